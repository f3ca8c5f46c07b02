"""`wecom-assistant sop validate|apply|dry-run|tick|install-playbook`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from importlib import resources
from pathlib import Path

import click
import yaml

from sop.engine.document import SopInvalid, check_semantics, parse


def read_document(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    if not isinstance(raw, dict):
        raise click.ClickException(f"{path}: document: a mapping is required")
    return raw


def playbook_files() -> list[Path]:
    folder = resources.files("sop.playbook")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith((".yaml", ".yml", ".json")))


def _run(coroutine_factory):
    from bot.commandline import cli_settings, cli_wiring
    from bot.services import open_services

    settings, wiring = cli_settings(), cli_wiring()

    async def run():
        async with open_services(settings, wiring=wiring) as services:
            return await coroutine_factory(services)

    return asyncio.run(run())


@click.group("sop")
def sop_group() -> None:
    """Friend-operation SOP templates and their engine."""


@sop_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check template files (no database: coupon templates are checked by `apply`)."""
    failed = False
    for path in files:
        try:
            check_semantics(parse(read_document(path)))
            click.echo(f"{path}: ok")
        except SopInvalid as exc:
            failed = True
            click.echo(f"{path}: {exc.field}: {exc.problem}", err=True)
    if failed:
        raise SystemExit(1)


async def _apply(services, raws: list[tuple[str, dict]]) -> list[dict]:
    from sop.engine import templates
    from sop.engine.config import SopConfig

    out = []
    async with services.db.session() as session, session.begin():  # all files or none
        for name, raw in raws:
            try:
                template, changed = await templates.save(session, services.config(SopConfig), raw, mode="apply")
            except SopInvalid as exc:
                raise click.ClickException(f"{name}: {exc.field}: {exc.problem} (nothing saved)") from None
            out.append({"file": name, "code": template.code, "version": template.version, "changed": changed})
    return out


@sop_group.command("apply")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def apply_command(files: tuple[Path, ...]) -> None:
    """Create or update templates from YAML/JSON files (a changed one becomes a new version)."""
    raws = [(str(path), read_document(path)) for path in files]
    for row in _run(lambda services: _apply(services, raws)):
        click.echo(json.dumps(row, ensure_ascii=False))


@sop_group.command("install-playbook")
def install_playbook() -> None:
    """Install the built-in playbook (onboarding, first-purchase visit, repurchase, dormant recall,
    coupon expiry, birthday). Coupon templates they name must exist."""
    raws = [(path.name, read_document(path)) for path in playbook_files()]
    for row in _run(lambda services: _apply(services, raws)):
        click.echo(json.dumps(row, ensure_ascii=False))


@sop_group.command("dry-run")
@click.argument("code")
@click.option("--days", type=click.IntRange(1, 90), default=14)
def dry_run_command(code: str, days: int) -> None:
    """Customers each step would reach on each of the next days, per store."""
    from sqlalchemy import select

    from bot.members.config import MembersConfig
    from bot.storage import utcnow
    from sop.engine.dryrun import dry_run
    from sop.engine.engine import Versions, zone_of
    from sop.engine.models import SopTemplate

    async def run(services):
        async with services.db.session() as session:
            template = await session.scalar(select(SopTemplate).where(SopTemplate.code == code))
            if template is None:
                raise click.ClickException(f"no SOP {code!r}")
            document = await Versions(session).get(template.code, template.version)
            return await dry_run(session, template, document, now=utcnow(), days=days, zone=zone_of(services),
                                 members=services.config(MembersConfig))

    for row in _run(run):
        click.echo(json.dumps(row, ensure_ascii=False))


@sop_group.command("tick")
@click.option("--at", "at", required=True, help="ISO time the pass runs as (e.g. 2026-12-02T10:00+08:00).")
def tick_command(at: str) -> None:
    """One pass as if the clock read AT; what is due is planned, then sent now (a job burst)."""
    from bot.jobs import JobRunner
    from sop.engine.tick import run_tick

    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(f"not an ISO time: {at!r}", param_hint="--at") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone offset (e.g. +08:00)", param_hint="--at")

    async def run(services):
        report = await run_tick(services, moment.astimezone(dt.UTC))
        settings = services.settings
        runner = JobRunner(services, concurrency=settings.job_concurrency, lease_seconds=settings.job_lease_seconds,
                           poll_seconds=settings.job_poll_seconds)
        services.runner = runner
        await runner.run(burst=True)
        return report

    report = _run(run)
    click.echo(json.dumps({"at": report.at.isoformat(), "enrolled": report.enrolled, "items": report.items,
                           "queued": report.queued, "exited": report.exited, "skipped": report.skipped,
                           "digests": report.digests}, ensure_ascii=False))
