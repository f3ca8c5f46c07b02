"""The job runner: retries, dead letters, leases after a killed worker, several workers."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from sqlalchemy import func, select

from bot.api.operations import retry_dead_job
from bot.jobs import JobRunner, Retry, enqueue, tasks
from bot.jobs.runner import backoff_seconds
from bot.storage import Database
from bot.storage.models import Job
from tests.conftest import prepare_postgres

CALLS: dict[str, list] = {"flaky": [], "always_fails": [], "count": [], "slow": [], "deferred": []}


@tasks("test.flaky")
async def flaky(ctx, payload):
    CALLS["flaky"].append(ctx.attempt)
    if ctx.attempt < payload["succeed_on"]:
        raise RuntimeError(f"boom {ctx.attempt}")


@tasks("test.always_fails")
async def always_fails(ctx, payload):
    CALLS["always_fails"].append(ctx.attempt)
    raise ValueError("never works")


@tasks("test.count")
async def count(ctx, payload):
    CALLS["count"].append(payload["n"])
    await asyncio.sleep(0)


@tasks("test.slow")
async def slow(ctx, payload):
    CALLS["slow"].append(ctx.attempt)
    if ctx.attempt == 1:
        await asyncio.sleep(3600)  # the first worker "hangs" and is killed


@tasks("test.deferred")
async def deferred(ctx, payload):
    CALLS["deferred"].append(ctx.attempt)
    if len(CALLS["deferred"]) == 1:
        raise Retry(0.05, "rate limited")


def runner_for(db: Database, **options) -> JobRunner:
    services = SimpleNamespace(db=db, settings=SimpleNamespace(job_max_attempts=6))
    options.setdefault("poll_seconds", 0.02)
    options.setdefault("backoff_base", 0.01)
    return JobRunner(services, **options)


async def add_job(db: Database, kind: str, payload: dict, **options) -> None:
    async with db.session() as session, session.begin():
        await enqueue(session, kind, payload, **options)


async def job_rows(db: Database) -> list[Job]:
    async with db.session() as session:
        return list(await session.scalars(select(Job).order_by(Job.id)))


async def test_failed_job_is_retried_until_it_succeeds(db):
    CALLS["flaky"].clear()
    await add_job(db, "test.flaky", {"succeed_on": 3})
    await runner_for(db).run(burst=True)
    (job,) = await job_rows(db)
    assert CALLS["flaky"] == [1, 2, 3]
    assert (job.status, job.attempts) == ("done", 3)
    assert job.last_error == "RuntimeError: boom 2"


async def test_last_attempt_dead_letters_and_retry_brings_it_back(db):
    CALLS["always_fails"].clear()
    await add_job(db, "test.always_fails", {}, max_attempts=3)
    await runner_for(db).run(burst=True)
    (job,) = await job_rows(db)
    assert (job.status, job.attempts, job.last_error) == ("dead", 3, "ValueError: never works")
    assert CALLS["always_fails"] == [1, 2, 3]

    assert await retry_dead_job(db, job.id)
    assert not await retry_dead_job(db, job.id)  # no longer dead
    await runner_for(db).run(burst=True)
    assert CALLS["always_fails"] == [1, 2, 3, 1, 2, 3]


async def test_retry_defers_without_using_an_attempt(db):
    CALLS["deferred"].clear()
    await add_job(db, "test.deferred", {}, max_attempts=1)
    await runner_for(db).run(burst=True)  # a burst waits for the deferred job too
    (job,) = await job_rows(db)
    assert (job.status, CALLS["deferred"]) == ("done", [1, 1])


async def test_dedupe_key_makes_enqueue_idempotent(db):
    async with db.session() as session, session.begin():
        assert await enqueue(session, "test.count", {"n": 1}, dedupe_key="welcome:wm1")
        assert not await enqueue(session, "test.count", {"n": 2}, dedupe_key="welcome:wm1")
    assert len(await job_rows(db)) == 1


async def test_priority_runs_first(db):
    CALLS["count"].clear()
    for n in range(5):
        await add_job(db, "test.count", {"n": n})
    await add_job(db, "test.count", {"n": 99}, priority=100)
    await runner_for(db, concurrency=1).run(burst=True)
    assert CALLS["count"][0] == 99


async def test_unknown_kind_is_dead_lettered(db):
    await add_job(db, "test.no_such_kind", {})
    await runner_for(db).run(burst=True)
    (job,) = await job_rows(db)
    assert job.status == "dead" and "unknown job kind" in job.last_error


async def test_killed_worker_job_runs_again_after_its_lease(db):
    CALLS["slow"].clear()
    await add_job(db, "test.slow", {})
    first = runner_for(db, lease_seconds=0.3)
    task = asyncio.create_task(first.run())
    while not CALLS["slow"]:
        await asyncio.sleep(0.01)
    task.cancel()  # the worker dies mid-job; its lease is not renewed
    await asyncio.gather(task, return_exceptions=True)
    (job,) = await job_rows(db)
    assert job.status == "running"

    await asyncio.sleep(0.35)
    await runner_for(db, lease_seconds=5).run(burst=True)
    (job,) = await job_rows(db)
    assert CALLS["slow"] == [1, 2]
    assert (job.status, job.attempts) == ("done", 2)


async def test_lease_is_renewed_for_long_jobs(db):
    CALLS["slow"].clear()
    await add_job(db, "test.slow", {})
    runner = runner_for(db, lease_seconds=0.3)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.7)  # more than two leases: renewal keeps the job with its worker
    (job,) = await job_rows(db)
    assert job.locked_by == runner.worker_id and job.lease_until > time.time()
    assert await runner_for(db)._claim(10) == []  # another worker cannot take it
    assert CALLS["slow"] == [1]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_backoff_grows_exponentially_with_jitter():
    samples = [backoff_seconds(attempt, 2.0) for attempt in (1, 2, 3, 4)]
    for attempt, value in zip((1, 2, 3, 4), samples, strict=True):
        step = 2.0 * 2 ** (attempt - 1)
        assert 0.5 * step <= value < 1.5 * step
    assert backoff_seconds(30, 2.0, cap=600) < 900


async def test_two_workers_on_postgres_drain_1000_jobs_none_twice(postgres_url):
    await prepare_postgres(postgres_url)
    db_a, db_b = Database(postgres_url), Database(postgres_url)
    try:
        CALLS["count"].clear()
        async with db_a.session() as session, session.begin():
            for n in range(1000):
                await enqueue(session, "test.count", {"n": n})
        runners = [runner_for(db_a, concurrency=8), runner_for(db_b, concurrency=8)]
        finished = await asyncio.gather(*(r.run(burst=True) for r in runners))
        assert sorted(CALLS["count"]) == list(range(1000))  # every job once, none twice
        assert sum(finished) == 1000 and all(f > 100 for f in finished)  # both really worked
        async with db_a.session() as session:
            done = await session.scalar(select(func.count()).select_from(Job).where(Job.status == "done"))
        assert done == 1000
    finally:
        await db_a.dispose()
        await db_b.dispose()


async def test_a_worker_on_postgres_wakes_on_notify_not_on_its_poll(postgres_url):
    await prepare_postgres(postgres_url)
    web, worker = Database(postgres_url), Database(postgres_url)
    try:
        CALLS["count"].clear()
        runner = runner_for(worker, poll_seconds=30)  # polling alone would take half a minute
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.3)  # listening
        started = time.monotonic()
        await add_job(web, "test.count", {"n": 7})  # another process's transaction
        while not CALLS["count"] and time.monotonic() - started < 5:
            await asyncio.sleep(0.01)
        assert CALLS["count"] == [7]
        assert time.monotonic() - started < 2
        runner.stop()
        await asyncio.wait_for(task, 5)
    finally:
        await web.dispose()
        await worker.dispose()


tasks.install([flaky, always_fails, count, slow, deferred])  # the jobs these tests run (the app installs its features')
