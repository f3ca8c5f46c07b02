"""`wecom-assistant sop validate|apply|install-playbook|tick|dry-run` against the embedded service."""

from __future__ import annotations

import asyncio
import json

import yaml
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.storage import Database
from sop.engine.cli import playbook_files
from sop.engine.models import SopTemplate
from tests.sop.conftest import ONBOARDING, local

PLAYBOOK_CODES = ["birthday", "coupon-expiry", "dormant-180", "dormant-300", "dormant-90", "first-purchase-visit",
                  "onboarding", "repurchase"]


def rows(output: str, key: str) -> list[dict]:
    """The command's JSON lines (log records share stdout)."""
    parsed = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [row for row in parsed if key in row]


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_validate_points_at_the_field(tmp_path):
    good = tmp_path / "onboarding.json"
    good.write_text(json.dumps(ONBOARDING, ensure_ascii=False), encoding="utf-8")
    bad = dict(ONBOARDING, steps=[dict(ONBOARDING["steps"][0], content={"text": "{customer_name}"})])
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    result = run("sop", "validate", str(good), str(bad_file))
    assert result.exit_code == 1
    assert f"{good}: ok" in result.output
    assert f"{bad_file}: steps[0].content.text: {{customer_name}} is per customer" in result.output


def test_the_built_in_playbook_files_are_valid():
    assert sorted(yaml.safe_load(path.read_text(encoding="utf-8"))["code"] for path in playbook_files()) == PLAYBOOK_CODES
    result = run("sop", "validate", *[str(path) for path in playbook_files()])
    assert result.exit_code == 0, result.output


async def test_apply_install_playbook_tick_and_dry_run(tmp_path, make_settings):
    settings = make_settings()
    # The command reads the SOP settings from the environment: no per-minute tick job (the test ticks).
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
           "REDIS_KEY_PREFIX": settings.redis_key_prefix, "SOP_TICK_ENABLED": "false"}
    document = tmp_path / "onboarding.json"
    document.write_text(json.dumps(dict(ONBOARDING, steps=[dict(step, benefit=None) if step.get("benefit") else step
                                                            for step in ONBOARDING["steps"]]), ensure_ascii=False))
    def cli(*args):
        return asyncio.get_running_loop().run_in_executor(None, lambda: run(*args, env=env))

    result = await cli("sop", "apply", str(document))
    assert result.exit_code == 0, result.output
    assert [(row["code"], row["version"]) for row in rows(result.output, "file")] == [("onboarding", 1)]
    result = await cli("sop", "install-playbook")
    assert result.exit_code == 0, result.output
    assert [row["code"] for row in rows(result.output, "file")] == [
        yaml.safe_load(path.read_text(encoding="utf-8"))["code"] for path in playbook_files()]
    result = await cli("sop", "tick", "--at", local(1, "10:00").isoformat())
    assert result.exit_code == 0, result.output
    assert rows(result.output, "enrolled")[0]["enrolled"] == 0
    result = await cli("sop", "tick", "--at", "tomorrow")
    assert result.exit_code == 2 and "--at" in result.output
    result = await cli("sop", "dry-run", "onboarding", "--days", "14")
    assert result.exit_code == 0 and rows(result.output, "customers") == []
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            codes = sorted((await session.scalars(select(SopTemplate.code))).all())
    finally:
        await database.dispose()
    assert codes == PLAYBOOK_CODES
