"""A job kind declares its priority, attempts and timeout once; enqueue and the runner use them."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs import Priority, enqueue, insert_jobs, job_row, tasks

HUNG: list[int] = []


@tasks("test.declared", priority=Priority.HIGH, max_attempts=2, timeout=30)
async def declared(ctx, payload):
    return None


@tasks("test.hangs", max_attempts=2, timeout=0.2)
async def hangs(ctx, payload):
    HUNG.append(ctx.attempt)
    await asyncio.sleep(3600)  # a call that never answers


def test_rows_take_the_declared_options_unless_given():
    row = job_row("test.declared", {"a": 1})
    assert (row["priority"], row["max_attempts"], row["status"], row["attempts"]) == (10, 2, "queued", 0)
    assert job_row("test.declared", priority=Priority.URGENT, max_attempts=9)["priority"] == 100
    assert job_row("test.not_registered")["max_attempts"] == 6  # a kind from another process: defaults


def test_bad_options_are_refused_at_registration():
    with pytest.raises(ValueError, match="max_attempts"):
        tasks("test.bad", max_attempts=0)


async def test_enqueue_and_a_bulk_insert_on_a_bare_connection_use_one_builder(db, rows):
    async with db.session() as session, session.begin():
        assert await enqueue(session, "test.declared", {"n": 0}, dedupe_key="k0")
    async with db.engine.begin() as conn:
        ids = await insert_jobs(conn, [job_row("test.declared", {"n": n}, dedupe_key=f"k{n}") for n in range(3)])
    assert len(ids) == 2  # k0 existed
    jobs = await rows(db)
    assert [(job.dedupe_key, job.priority, job.max_attempts) for job in jobs] == [
        ("k0", 10, 2), ("k1", 10, 2), ("k2", 10, 2)]


async def test_a_hung_job_is_stopped_by_its_timeout_and_dead_lettered(db, runner_for, rows):
    HUNG.clear()
    async with db.session() as session, session.begin():
        await enqueue(session, "test.hangs", {})
    await asyncio.wait_for(runner_for(db, lease_seconds=0.3).run(burst=True), 10)
    (job,) = await rows(db)
    assert HUNG == [1, 2]
    assert (job.status, job.last_error) == ("dead", "timed out after 0.2s")


tasks.install([declared, hangs])  # the jobs these tests run (the app installs its features')
