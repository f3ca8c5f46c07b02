"""Run the installed `wecom-assistant` as a user would: a separate process with its own environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WA = str(Path(sys.executable).parent / "wecom-assistant")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cli:
    """`wecom-assistant` in a clean environment: an embedded SQLite file in tmp, free ports."""

    def __init__(self, tmp_path: Path):
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("WECOM_", "DATABASE_", "REDIS_", "PUBLIC_", "LOG_", "EMULATOR_"))
                    and k not in ("PORT", "HOST")}
        self.env.update(DATABASE_URL=f"sqlite:///{tmp_path}/wa.db", PORT=str(free_port()),
                        EMULATOR_PORT=str(free_port()))
        self.cwd = tmp_path  # no .env of the developer's is read
        self.processes: list[subprocess.Popen] = []

    @property
    def port(self) -> int:
        return int(self.env["PORT"])

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([WA, *args], cwd=self.cwd, env={**self.env, **env}, capture_output=True,
                              text=True, timeout=timeout)

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        process = subprocess.Popen([WA, *args], cwd=self.cwd, env={**self.env, **env},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.processes.append(process)
        return process

    def wait_until_serving(self, process: subprocess.Popen, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {process.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve did not start listening in time")

    def stop_all(self) -> list[str]:
        outputs = []
        for process in self.processes:
            process.terminate()
            try:
                outputs.append(process.communicate(timeout=10)[0])
            except subprocess.TimeoutExpired:
                process.kill()
                outputs.append(process.communicate()[0])
        return outputs


@pytest.fixture
def cli(tmp_path):
    runner = Cli(tmp_path)
    yield runner
    runner.stop_all()
