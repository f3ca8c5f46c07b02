"""Finished jobs and settled inbox rows are deleted in batches after their age; dead letters stay."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.jobs import job_row
from bot.jobs.retention import prune_finished, purge_dead_jobs
from bot.storage import utcnow
from bot.storage.models import InboxEvent, Job

NOW = utcnow()


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


async def _add_jobs(db, specs: list[tuple[str, str, float | None]]) -> None:
    rows = []
    for name, status, age in specs:
        row = job_row("test.count", {"name": name}, dedupe_key=name)
        row.update(status=status, finished_at=days_ago(age) if age is not None else None)
        rows.append(row)
    async with db.engine.begin() as conn:  # the builder's rows, bulk-inserted on a bare connection
        await conn.execute(Job.__table__.insert(), rows)


async def _add_inbox(db, specs: list[tuple[str, str, float]]) -> None:
    async with db.session() as session, session.begin():
        for key, status, age in specs:
            session.add(InboxEvent(dedup_key=key, kind="event", msg_type="event", create_time=0, plaintext="<xml/>",
                                   status=status, received_at=days_ago(age)))


async def test_old_finished_jobs_and_settled_inbox_rows_go_in_batches(db):
    await _add_jobs(db, [(f"old-done-{n}", "done", 8) for n in range(5)] + [
        ("old-expired", "expired", 8), ("fresh-done", "done", 1), ("old-dead", "dead", 90),
        ("queued", "queued", None), ("running", "running", None)])
    await _add_inbox(db, [("old-handled", "handled", 31), ("old-ignored", "ignored", 31),
                          ("old-failed", "failed", 31), ("old-pending", "pending", 31), ("fresh", "handled", 2)])
    result = await prune_finished(db, jobs_older_than=dt.timedelta(days=7), inbox_older_than=dt.timedelta(days=30),
                                  batch=2, now=NOW)
    assert result == {"jobs_deleted": 6, "inbox_deleted": 2}
    async with db.session() as session:
        jobs = sorted(await session.scalars(select(Job.dedupe_key)))
        inbox = sorted(await session.scalars(select(InboxEvent.dedup_key)))
    assert jobs == ["fresh-done", "old-dead", "queued", "running"]
    assert inbox == ["fresh", "old-failed", "old-pending"]


async def test_dead_letters_are_purged_only_by_id_or_age(db):
    await _add_jobs(db, [("dead-a", "dead", 40), ("dead-b", "dead", 2), ("dead-c", "dead", 2), ("done", "done", 2)])
    async with db.session() as session:
        ids = {key: job_id for job_id, key in await session.execute(select(Job.id, Job.dedupe_key))}
    assert await purge_dead_jobs(db, job_ids=[ids["dead-b"], ids["done"]]) == 1  # a done job is not a dead letter
    assert await purge_dead_jobs(db, older_than=dt.timedelta(days=30), now=NOW) == 1
    with pytest.raises(ValueError, match="by id or by age"):
        await purge_dead_jobs(db)
    async with db.session() as session:
        assert sorted(await session.scalars(select(Job.dedupe_key))) == ["dead-c", "done"]


async def test_the_jobs_cli_purges_dead_letters_and_refuses_a_purge_of_everything(db, database_url, monkeypatch):
    import asyncio
    import json

    from click.testing import CliRunner

    from bot.cli import main as cli

    await _add_jobs(db, [("dead-a", "dead", 40), ("dead-b", "dead", 2)])
    monkeypatch.setenv("DATABASE_URL", database_url)
    refused = await asyncio.to_thread(CliRunner().invoke, cli, ["jobs", "purge"])
    assert refused.exit_code == 2 and "JOB_IDS or --older-than-days" in refused.output
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["jobs", "purge", "--older-than-days", "30"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1]) == {"purged": 1}
    async with db.session() as session:
        assert list(await session.scalars(select(Job.dedupe_key))) == ["dead-b"]
