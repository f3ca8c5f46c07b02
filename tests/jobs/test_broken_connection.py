"""PostgreSQL goes away under a working runner and comes back: no job is lost, stuck or run twice.

A TCP proxy between the runner and PostgreSQL is cut (open connections reset, new ones refused)
and restored. Runs on PostgreSQL whatever the suite's backend (SQLite has no connection to lose).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select, text

from bot.jobs import enqueue, tasks
from bot.storage import Database
from bot.storage.models import Job
from tests.conftest import prepare_postgres
from tests.jobs.conftest import make_runner


class CuttableProxy:
    """Forwards TCP to PostgreSQL until cut; while cut, every connection is reset at once."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer, upstream_writer}

        async def pump(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
        self._pipes -= {writer, upstream_writer}

    def cut(self) -> None:
        self.up = False
        for writer in list(self._pipes):
            writer.transport.abort()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        self._server.close()
        await self._server.wait_closed()


TOUCHED: dict[int, int] = {}  # job id -> runs that reached the end
STARTED: set[int] = set()
RELEASE: dict[str, asyncio.Event] = {}  # made in each test's own event loop


@tasks("test.reads_twice")
async def reads_twice(ctx, payload):
    async with ctx.services.db.session() as session:
        await session.execute(text("SELECT 1"))
    STARTED.add(ctx.job_id)
    await RELEASE["jobs"].wait()
    async with ctx.services.db.session() as session:  # the database is gone by now (first run)
        await session.execute(text("SELECT 1"))
    TOUCHED[ctx.job_id] = TOUCHED.get(ctx.job_id, 0) + 1


@tasks("test.no_database")
async def no_database(ctx, payload):
    STARTED.add(ctx.job_id)
    await RELEASE["jobs"].wait()
    TOUCHED[ctx.job_id] = TOUCHED.get(ctx.job_id, 0) + 1


async def _through_proxy(postgres_url: str, kind: str, count: int, lease_seconds: float):
    await prepare_postgres(postgres_url)
    direct = Database(postgres_url)
    async with direct.session() as session, session.begin():
        for n in range(count):
            await enqueue(session, kind, {"n": n})
    host_port, _, rest = postgres_url.split("@", 1)[1].partition("/")
    host, _, port = host_port.partition(":")
    proxy = CuttableProxy(host, int(port or 5432))
    proxied = Database(postgres_url.replace(host_port, f"127.0.0.1:{await proxy.start()}"))
    return direct, proxy, proxied


async def _states(db) -> dict[str, int]:
    async with db.session() as session:
        return dict((await session.execute(select(Job.status, func.count()).group_by(Job.status))).all())


async def _outage_while_jobs_run(postgres_url: str, kind: str, lease_seconds: float, outage_seconds: float):
    TOUCHED.clear()
    STARTED.clear()
    RELEASE["jobs"] = asyncio.Event()
    direct, proxy, proxied = await _through_proxy(postgres_url, kind, 6, lease_seconds)
    runner = make_runner(proxied, concurrency=8, lease_seconds=lease_seconds, poll_seconds=0.05)
    task = asyncio.create_task(runner.run())
    try:
        while len(STARTED) < 6:
            await asyncio.sleep(0.01)
        proxy.cut()
        RELEASE["jobs"].set()  # the jobs go on while the database is unreachable
        await asyncio.sleep(outage_seconds)
        proxy.restore()
        started = time.monotonic()
        while (await _states(direct)).get("done", 0) < 6 and time.monotonic() - started < 15:
            await asyncio.sleep(0.1)
        async with direct.session() as session:
            jobs = list(await session.scalars(select(Job).order_by(Job.id)))
        return jobs, time.monotonic() - started
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)
        await proxy.close()
        await proxied.dispose()
        await direct.dispose()


async def test_jobs_that_lost_their_connection_are_released_at_once_and_run_once(postgres_url):
    jobs, recovered_in = await _outage_while_jobs_run(postgres_url, "test.reads_twice", lease_seconds=60, outage_seconds=1.0)
    # Not after the 60 s lease: as soon as PostgreSQL is back.
    assert [job.status for job in jobs] == ["done"] * 6 and recovered_in < 10
    assert [job.attempts for job in jobs] == [1] * 6  # the outage spent no attempt
    assert all("Error" in (job.last_error or "") for job in jobs)  # they did meet it
    assert TOUCHED == {job.id: 1 for job in jobs}  # each ran to its end exactly once


async def test_completions_written_during_an_outage_are_recorded_when_it_ends_not_run_again(postgres_url):
    # The outage outlasts the lease: a completion that gives up would let the sweep run the job again.
    jobs, recovered_in = await _outage_while_jobs_run(postgres_url, "test.no_database", lease_seconds=1.5, outage_seconds=2.5)
    assert [job.status for job in jobs] == ["done"] * 6 and recovered_in < 10
    assert TOUCHED == {job.id: 1 for job in jobs}


async def test_a_connection_left_mid_operation_is_discarded_not_pooled(monkeypatch, postgres_url):
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    await prepare_postgres(postgres_url)
    db = Database(postgres_url)
    try:
        async with db.engine.connect() as conn:
            pooled = await conn.get_raw_connection()
            raw = pooled.driver_connection

            adapter = type(pooled.dbapi_connection)
            prepare = adapter._prepare

            async def busy(self, *args, **kwargs):
                if self is pooled.dbapi_connection:  # what asyncpg says on a connection left mid-operation
                    raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
                return await prepare(self, *args, **kwargs)

            monkeypatch.setattr(adapter, "_prepare", busy)
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT 1"))
        assert caught.value.connection_invalidated
        async with db.engine.connect() as conn:  # the next caller gets a fresh connection
            assert (await conn.get_raw_connection()).driver_connection is not raw
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()


tasks.install([reads_twice, no_database])  # the jobs these tests run (the app installs its features')
