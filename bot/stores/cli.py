"""`wecom-assistant import stores|guides FILE.csv` (bot/cli.py adds this group to the main CLI)."""

from __future__ import annotations

import asyncio
import sys

import click

from bot.stores.importer import ImportReport, import_guides_csv, import_stores_csv


async def _run(function, path: str, progress: bool) -> ImportReport:
    from bot.commandline import check_backends as _check_backends
    from bot.commandline import cli_settings as _settings
    from bot.kv import open_store
    from bot.storage import Database
    from bot.storage.migrate import upgrade
    from bot.stores.directory import stores_changed

    settings = _settings()
    await _check_backends(settings)
    if settings.is_sqlite:  # the embedded default migrates itself, as `serve` does
        await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url)
    try:
        report = await function(db, path, progress=progress)
        if report.ok and report.kind == "stores":
            # Running web processes reload their store directory at the next scan.
            kv = open_store(settings.redis_url, settings.redis_key_prefix)
            try:
                await stores_changed(kv)
            finally:
                await kv.close()
        return report
    finally:
        await db.dispose()


def _import(function, path: str, quiet: bool) -> None:
    try:
        report = asyncio.run(_run(function, path, progress=not quiet and sys.stderr.isatty()))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@click.group("import")
def import_group() -> None:
    """Import stores or guides from CSV (all rows or none)."""


@import_group.command("stores")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--quiet", is_flag=True, help="no progress bar")
def import_stores(path: str, quiet: bool) -> None:
    """Columns: code,name,city,address,lat,lng,coord_system,status,opening_hours."""
    _import(import_stores_csv, path, quiet)


@import_group.command("guides")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--quiet", is_flag=True, help="no progress bar")
def import_guides(path: str, quiet: bool) -> None:
    """Columns: userid,name,store_code,status,daily_add_limit,working_hours,is_backup."""
    _import(import_guides_csv, path, quiet)
