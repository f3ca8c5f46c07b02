"""What every `wecom-assistant` command shares (bot/cli.py and the features' command groups):
settings or a one-line error, a check that the backends answer, and the features of this run."""

from __future__ import annotations

import asyncio

import click

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging
from bot.wiring import NO_FEATURES, Wiring


def cli_settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    configure_logging(settings.log_level)
    return settings


def first_line(exc: BaseException) -> str:
    """The cause in one line (SQLAlchemy's text would add the SQL and a help link)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


async def check_backends(settings: Settings, *, redis: bool = True) -> None:
    """Fail start-up with one line when the database or Redis cannot be reached."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from bot.kv import open_store
    from bot.storage import Database

    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        database = Database(settings.database_url)
    except OSError as exc:  # the SQLite file's directory cannot be created
        raise click.ClickException(f"DATABASE_URL: cannot open the database {where}: {first_line(exc)}") from None
    try:
        async with asyncio.timeout(10), database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # refused, unknown host, bad password, timeout: all say the same to the user
        reason = "timed out" if isinstance(exc, TimeoutError) else first_line(exc)
        raise click.ClickException(f"DATABASE_URL: cannot reach the database {where}: {reason}") from None
    finally:
        await database.dispose()
    if redis and settings.redis_url:
        kv = open_store(settings.redis_url, settings.redis_key_prefix)
        try:
            reachable = await kv.ping()
        finally:
            await kv.close()
        if not reachable:
            where = make_url(settings.redis_url).render_as_string(hide_password=True)
            raise click.ClickException(f"REDIS_URL: cannot reach Redis at {where}")


def cli_wiring() -> Wiring:
    """The features of the running command (bot/cli.py puts them in click's root context)."""
    context = click.get_current_context(silent=True)
    wiring = context.find_root().obj if context is not None else None
    return wiring if isinstance(wiring, Wiring) else NO_FEATURES
