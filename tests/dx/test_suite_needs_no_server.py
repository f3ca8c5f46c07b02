"""The embedded test run needs no server; a test that needs one fails loudly when it is missing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1


def run_pytest(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["TEST_POSTGRES_URL"] = NOWHERE
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_embedded_run_collects_and_passes_without_postgresql():
    result = run_pytest("tests/callback/test_callback.py::test_official_url_verification_vector", "tests/jobs/test_runner.py",
                        "-k", "official_url_verification or backoff")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_postgresql_test_without_the_server_fails_naming_the_setting():
    result = run_pytest("tests/jobs/test_runner.py::test_two_workers_on_postgres_drain_1000_jobs_none_twice")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert "TEST_POSTGRES_URL" in result.stdout and "127.0.0.1:1" in result.stdout
