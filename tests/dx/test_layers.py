"""The layers written down in pyproject's [tool.importlinter] hold, and nothing wires itself in
by being imported: the composition (bot/features.py) is the one place that lists the features."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_layering_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_broken_layer_fails_the_check(tmp_path):
    """The check is not vacuous: a contract the code breaks (stores sit below customers, and
    customers read the stores' tables) makes lint-imports fail and name the import."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["bot", "handlers", "sop"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
                      'layers = ["bot.stores", "bot.customers"]\n')
    result = lint_imports("--config", str(config))
    assert result.returncode == 1 and "bot.customers" in result.stdout and "BROKEN" in result.stdout


IMPORT_EVERYTHING_BELOW_THE_COMPOSITION = """
import pkgutil, importlib, json
import bot, handlers, sop
ROOT_OF_COMPOSITION = ("bot.app", "bot.cli", "bot.features", "bot.emulator.__main__")
for package in (bot, handlers, sop):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.startswith(ROOT_OF_COMPOSITION) and ".migrations" not in info.name:
            importlib.import_module(info.name)
from bot.jobs.registry import tasks
from bot.jobs.cron import cron_jobs
print(json.dumps({"jobs": tasks.kinds(), "cron": [job.name for job in cron_jobs()]}))
"""


def test_importing_a_feature_registers_nothing():
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING_BELOW_THE_COMPOSITION], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == '{"jobs": [], "cron": []}'


def test_the_composition_lists_every_declared_job_route_and_cron_job():
    """A job or route declared in a module no feature lists would never run nor be served."""
    import importlib
    import pkgutil

    import bot
    import handlers
    import sop
    from bot.api.spec import declared_routes
    from bot.features import wiring
    from bot.jobs.cron import CronJob
    from bot.jobs.registry import declared_jobs

    modules = [importlib.import_module(info.name) for package in (bot, handlers, sop)
               for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
               if ".migrations" not in info.name and not info.name.endswith("__main__")]
    composed = wiring()
    assert set(declared_jobs(*modules)) == set(composed.jobs)
    assert set(declared_routes(*modules)) == set(composed.routes)
    assert len(composed.routes) == len(set(composed.routes)) and len(composed.jobs) == len(set(composed.jobs))
    declared_cron = {value.name for module in modules for value in vars(module).values() if isinstance(value, CronJob)}
    assert declared_cron == {job.name for job in composed.cron}


def test_the_welcome_is_written_at_intake_by_the_contact_router_declaration():
    from bot.customers.welcome import welcome_at_intake
    from bot.features import wiring
    from bot.services import build_dispatcher

    assert build_dispatcher(wiring()).intake_jobs() == [welcome_at_intake]
