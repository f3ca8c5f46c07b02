"""`wecom-assistant`: serve, worker, db, token, jobs, emulator."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

import click
from aiohttp import web

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging

log = logging.getLogger("bot")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    configure_logging(settings.log_level)
    return settings


@click.group()
def main() -> None:
    """WeCom store-guide assistant."""


@main.command()
@click.option("--host", default=None, help="Bind address (default HOST or 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Port (default PORT or 8080).")
@click.option("--no-jobs", is_flag=True, help="Do not run jobs in this process (use separate workers).")
def serve(host: str | None, port: int | None, no_jobs: bool) -> None:
    """Run the web service (and, unless --no-jobs, a job runner in-process)."""
    settings = _settings()
    from bot.app import create_app

    app = create_app(settings, run_jobs=not no_jobs)
    web.run_app(app, host=host or settings.host, port=port or settings.port, access_log=None,
                print=lambda line: log.info(line.strip()))


@main.command()
@click.option("--burst", is_flag=True, help="Run until no job is due, then exit.")
@click.option("--concurrency", type=int, default=None)
def worker(burst: bool, concurrency: int | None) -> None:
    """Run a standalone job runner."""
    settings = _settings()
    sys.exit(0 if asyncio.run(_work(settings, burst, concurrency)) >= 0 else 1)


async def _work(settings: Settings, burst: bool, concurrency: int | None) -> int:
    from bot.app import _load_features
    from bot.jobs import JobRunner
    from bot.services import open_services

    _load_features()
    async with open_services(settings) as services:
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

    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def token() -> None:
    """Admin API tokens."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["hq_admin", "store_manager", "guide", "integration"]))
@click.option("--store", "stores", multiple=True, help="Store code (store_manager; repeatable).")
@click.option("--guide", "guide_userid", default=None, help="Guide userid (guide role).")
@click.option("--name", default="", help="A label for the token.")
def token_create(role: str, stores: tuple[str, ...], guide_userid: str | None, name: str) -> None:
    """Create a token; it is printed once, as the last word of the output."""
    settings = _settings()
    from bot.api.auth import Role, create_token

    async def run() -> str:
        from bot.storage import Database
        from bot.storage.migrate import upgrade

        if settings.is_sqlite:
            await asyncio.to_thread(upgrade, settings.database_url)
        database = Database(settings.database_url)
        try:
            return await create_token(database, Role(role), store_codes=list(stores),
                                      guide_userid=guide_userid, name=name)
        finally:
            await database.dispose()

    try:
        value = asyncio.run(run())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"created {role} token (shown once): {value}")


@main.group()
def jobs() -> None:
    """The job queue and its dead letters."""


@jobs.command("list")
@click.option("--status", type=click.Choice(["queued", "running", "done", "dead"]), default=None)
@click.option("--kind", default=None)
@click.option("--limit", type=int, default=50)
def jobs_list(status: str | None, kind: str | None, limit: int) -> None:
    """Print jobs as JSON lines, newest first."""
    settings = _settings()
    from bot.api.operations import JobOut, select_jobs
    from bot.storage import Database

    async def run() -> None:
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
        database = Database(settings.database_url)
        try:
            return await retry_dead_job(database, job_id)
        finally:
            await database.dispose()

    if not asyncio.run(run()):
        raise click.ClickException(f"job {job_id} does not exist or is not dead")
    click.echo(json.dumps({"job_id": job_id, "status": "queued"}))


def _add_feature_commands() -> None:
    from bot.emulator.cli import emulator_group
    from bot.stores.cli import import_group
    from sop.engine.cli import sop_group

    main.add_command(emulator_group)
    main.add_command(import_group)
    main.add_command(sop_group)


_add_feature_commands()

if __name__ == "__main__":
    main()
