"""`wecom-assistant`: serve, worker, db, token, jobs, emulator."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import signal
import sys

import click
from aiohttp import web

from bot.commandline import check_backends as _check_backends
from bot.commandline import cli_settings as _settings
from bot.commandline import cli_wiring
from bot.commandline import first_line as _first_line
from bot.config import Settings, warn_about_risky_settings

log = logging.getLogger("bot")


def _port_in_use(exc: OSError, settings: Settings, port: int) -> str:
    if settings.uses_emulator and f", {settings.emulator_port})" in str(exc):
        return (f"EMULATOR_PORT: port {settings.emulator_port} is already in use (is another `serve` "
                "running? set EMULATOR_PORT to a free port)")
    return f"PORT: port {port} is already in use (is the service already running? set PORT or --port)"


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """WeCom store-guide assistant."""
    from bot.features import wiring

    ctx.obj = wiring()  # the feature commands reach it with bot.commandline.cli_wiring()


@main.command()
@click.option("--host", default=None, help="Bind address (default HOST or 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Port (default PORT or 8080).")
@click.option("--no-jobs", is_flag=True, help="Do not run jobs in this process (use separate workers).")
def serve(host: str | None, port: int | None, no_jobs: bool) -> None:
    """Run the web service (and, unless --no-jobs, a job runner in-process)."""
    settings = _settings()
    # The emulator posts its callbacks to settings.port: keep it the port really served.
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    warn_about_risky_settings(settings, log)
    asyncio.run(_check_backends(settings))
    from bot.app import create_app

    app = create_app(settings, run_jobs=not no_jobs)
    try:
        web.run_app(app, host=settings.host, port=settings.port, access_log=None,
                    print=lambda line: log.info(line.strip()))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(_port_in_use(exc, settings, settings.port)) from None
        raise click.ClickException(f"cannot start: {_first_line(exc)}") from None


def worker_settings(settings: Settings) -> Settings:
    """A worker never starts an emulator: without credentials it calls the one `serve` runs."""
    if not settings.uses_emulator:
        return settings
    if settings.emulator_port == 0:
        raise click.ClickException("EMULATOR_PORT: a worker without WeCom credentials calls the emulator "
                                   "that `serve` runs, so EMULATOR_PORT must be a fixed port, not 0")
    return settings.with_emulator_credentials(settings.embedded_emulator_api_url)


@main.command()
@click.option("--burst", is_flag=True, help="Run until no job is due, then exit.")
@click.option("--concurrency", type=int, default=None)
def worker(burst: bool, concurrency: int | None) -> None:
    """Run a standalone job runner."""
    settings = _settings()
    emulated = settings.uses_emulator
    settings = worker_settings(settings)
    if emulated:
        log.warning("no WeCom credentials configured: calling the built-in WeCom emulator of `serve` at %s",
                    settings.wecom_api_base_url)
    else:
        warn_about_risky_settings(settings, log)
    asyncio.run(_check_backends(settings))
    sys.exit(0 if asyncio.run(_work(settings, burst, concurrency)) >= 0 else 1)


async def _work(settings: Settings, burst: bool, concurrency: int | None) -> int:
    from bot.jobs import JobRunner
    from bot.services import open_services

    async with open_services(settings, wiring=cli_wiring()) as services:
        runner = JobRunner(
            services, concurrency=concurrency or settings.job_concurrency,
            lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds,
        )
        services.runner = runner
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        log.info("worker %s started%s", runner.worker_id, " (burst)" if burst else "")
        finished = await runner.run(burst=burst)
        log.info("worker %s finished %d jobs", runner.worker_id, finished)
        return finished


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations."""
    settings = _settings()
    from bot.storage.migrate import upgrade

    asyncio.run(_check_backends(settings, redis=False))
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def token() -> None:
    """Admin API tokens."""


async def _with_database(settings: Settings, work):
    """Run `work(database)` on the configured database (migrated first on the embedded default)."""
    from bot.storage import Database
    from bot.storage.migrate import upgrade

    await _check_backends(settings)
    if settings.is_sqlite:
        await asyncio.to_thread(upgrade, settings.database_url)
    database = Database(settings.database_url)
    try:
        return await work(database)
    finally:
        await database.dispose()


async def _missing_scope(database, stores: tuple[str, ...], guide_userid: str | None) -> str | None:
    """Why the token's stores or guide do not exist, or None."""
    from sqlalchemy import select

    from bot.stores.models import Guide, Store

    async with database.session() as session:
        known = set((await session.scalars(select(Store.code).where(Store.code.in_(stores)))).all())
        unknown = [code for code in stores if code not in known]
        if unknown:
            return f"--store: no store with code {', '.join(map(repr, unknown))}"
        if guide_userid and await session.scalar(select(Guide.id).where(Guide.userid == guide_userid)) is None:
            return f"--guide: no guide with userid {guide_userid!r}"
    return None


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["hq_admin", "store_manager", "guide", "integration"]))
@click.option("--store", "stores", multiple=True, help="Store code (store_manager; repeatable).")
@click.option("--guide", "guide_userid", default=None, help="Guide userid (guide role).")
@click.option("--name", default="", help="A label for the token.")
def token_create(role: str, stores: tuple[str, ...], guide_userid: str | None, name: str) -> None:
    """Create a token; it is printed once, as the last word of the output."""
    settings = _settings()
    from bot.api.auth import Role, create_token

    async def work(database) -> str:
        problem = await _missing_scope(database, stores, guide_userid)
        if problem:
            raise click.UsageError(problem)
        return await create_token(database, Role(role), store_codes=list(stores),
                                  guide_userid=guide_userid, name=name)

    try:
        value = asyncio.run(_with_database(settings, work))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"created {role} token (shown once): {value}")


@token.command("list")
@click.option("--all", "show_revoked", is_flag=True, help="Include revoked tokens.")
def token_list(show_revoked: bool) -> None:
    """Print tokens as JSON lines (id, role, scope, dates; never the token)."""
    settings = _settings()
    from sqlalchemy import select

    from bot.storage.models import ApiToken

    async def work(database) -> list[ApiToken]:
        query = select(ApiToken).order_by(ApiToken.id)
        if not show_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        async with database.session() as session:
            return list((await session.scalars(query)).all())

    for row in asyncio.run(_with_database(settings, work)):
        click.echo(json.dumps({
            "id": row.id, "role": row.role, "name": row.name, "store_codes": row.store_codes or [],
            "guide_userid": row.guide_userid, "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        }, ensure_ascii=False))


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (from `token list`); requests with it are refused from now on."""
    settings = _settings()
    from sqlalchemy import update

    from bot.storage.db import utcnow
    from bot.storage.models import ApiToken

    async def work(database) -> int:
        async with database.session() as session, session.begin():
            result = await session.execute(
                update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow()))
            return result.rowcount

    if not asyncio.run(_with_database(settings, work)):
        raise click.ClickException(f"token {token_id} does not exist or is already revoked")
    click.echo(json.dumps({"token_id": token_id, "revoked": True}))


@main.group()
def jobs() -> None:
    """The job queue and its dead letters."""


@jobs.command("list")
@click.option("--status", type=click.Choice(["queued", "running", "done", "dead", "expired"]), default=None)
@click.option("--kind", default=None)
@click.option("--limit", type=int, default=50)
def jobs_list(status: str | None, kind: str | None, limit: int) -> None:
    """Print jobs as JSON lines, newest first."""
    settings = _settings()
    from bot.api.operations import JobOut, select_jobs
    from bot.storage import Database

    async def run() -> None:
        await _check_backends(settings, redis=False)
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                for row in (await session.scalars(select_jobs(status, kind, limit))).all():
                    click.echo(JobOut.model_validate(row).model_dump_json())
        finally:
            await database.dispose()

    asyncio.run(run())


@jobs.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Put a dead job back in the queue."""
    settings = _settings()
    from bot.api.operations import retry_dead_job
    from bot.storage import Database

    async def run() -> bool:
        await _check_backends(settings, redis=False)
        database = Database(settings.database_url)
        try:
            return await retry_dead_job(database, job_id)
        finally:
            await database.dispose()

    if not asyncio.run(run()):
        raise click.ClickException(f"job {job_id} does not exist or is not dead")
    click.echo(json.dumps({"job_id": job_id, "status": "queued"}))


@jobs.command("purge")
@click.argument("job_ids", type=int, nargs=-1)
@click.option("--older-than-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Purge the dead letters that died more than this many days ago.")
def jobs_purge(job_ids: tuple[int, ...], older_than_days: float | None) -> None:
    """Delete dead letters, by id or by age (other jobs are never touched)."""
    if not job_ids and older_than_days is None:
        raise click.UsageError("name the dead jobs to purge: JOB_IDS or --older-than-days")
    settings = _settings()
    import datetime as dt

    from bot.jobs.retention import purge_dead_jobs
    from bot.storage import Database

    async def run() -> int:
        database = Database(settings.database_url)
        try:
            return await purge_dead_jobs(
                database, job_ids=list(job_ids) or None,
                older_than=dt.timedelta(days=older_than_days) if older_than_days is not None else None)
        finally:
            await database.dispose()

    click.echo(json.dumps({"purged": asyncio.run(run())}))


def _add_feature_commands() -> None:
    from bot.emulator.cli import emulator_group
    from bot.features import wiring

    main.add_command(emulator_group)
    for command in wiring().commands:
        main.add_command(command)


_add_feature_commands()

if __name__ == "__main__":
    main()
