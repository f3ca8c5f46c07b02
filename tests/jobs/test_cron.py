"""Cron: `next_run` is pure; each occurrence is queued once however many processes seed it."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from bot.jobs import tasks
from bot.jobs.cron import cron, install_cron_jobs, next_run, occurrence_key, seed_cron_jobs
from bot.storage.models import Job

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(("spec", "now", "expected"), [
    ("0 3 * * *", "2024-01-01T18:00+00:00", "2024-01-02T03:00:00+08:00"),  # 02:00 in China: tonight
    ("0 3 * * *", "2024-01-01T20:00+00:00", "2024-01-03T03:00:00+08:00"),  # 04:00: missed, tomorrow
    ("* * * * *", "2024-01-01T10:00:30+08:00", "2024-01-01T10:01:00+08:00"),  # strictly after now
    ("*/15 9-17 * * mon-fri", "2024-01-05T17:50+08:00", "2024-01-08T09:00:00+08:00"),  # Friday → Monday
    ("30 4 1 * *", "2024-01-31T12:00+08:00", "2024-02-01T04:30:00+08:00"),
    ("0 0 29 2 *", "2024-03-01T00:00+08:00", "2028-02-29T00:00:00+08:00"),  # the next leap day
    ("0 12 13 * 5", "2024-09-10T00:00+08:00", "2024-09-13T12:00:00+08:00"),  # day OR weekday: Fri 13th
    ("0 12 1 * 0", "2024-09-02T00:00+08:00", "2024-09-08T12:00:00+08:00"),  # ... a Sunday comes first
    ("0 8 * * 7", "2024-09-02T00:00+08:00", "2024-09-08T08:00:00+08:00"),  # 7 is Sunday too
])
def test_next_run(spec, now, expected):
    assert next_run(spec, at(now), "Asia/Shanghai").isoformat() == expected


def test_next_run_in_another_zone_and_across_a_dst_gap():
    # 02:30 does not exist in Berlin on 2024-03-31: that day is skipped.
    assert next_run("30 2 * * *", at("2024-03-30T03:00+01:00"), "Europe/Berlin").isoformat() \
        == "2024-04-01T02:30:00+02:00"


@pytest.mark.parametrize(("spec", "field"), [
    ("0 3 * *", "5 fields"), ("60 * * * *", "minute"), ("0 24 * * *", "hour"), ("0 0 0 * *", "day"),
    ("0 0 * 13 *", "month"), ("0 0 * * funday", "weekday"), ("5-1 * * * *", "backwards"),
])
def test_a_bad_spec_names_the_field(spec, field):
    with pytest.raises(ValueError, match=field):
        next_run(spec, at("2024-01-01T00:00+00:00"))


CRON_RUNS: list[int] = []


@tasks("test.every_minute")
async def every_minute(ctx, payload):
    CRON_RUNS.append(ctx.job_id)


EVERY_MINUTE = cron("test-every-minute", "* * * * *", "test.every_minute")
NEW_YEAR = cron("test-new-year", "0 0 1 1 *", "test.every_minute")


async def test_many_processes_seed_an_occurrence_once(db):
    now = at("2024-01-01T10:00:30+08:00")
    for _ in range(3):  # three processes starting up
        async with db.session() as session, session.begin():
            await seed_cron_jobs(session, "Asia/Shanghai", now=now, jobs=[EVERY_MINUTE])
    async with db.session() as session:
        jobs = list(await session.scalars(select(Job)))
    assert [job.dedupe_key for job in jobs] == [occurrence_key("test-every-minute", at("2024-01-01T10:01+08:00"))]
    assert jobs[0].dedupe_key == "cron:test-every-minute:2024-01-01T10:01+08:00"
    assert jobs[0].run_at == at("2024-01-01T10:01+08:00").timestamp()


async def test_the_runner_queues_the_next_occurrence_when_one_ends(db, runner_for, rows):
    CRON_RUNS.clear()
    async with db.session() as session, session.begin():
        await seed_cron_jobs(session, "Asia/Shanghai", now=at("2024-06-01T00:00+08:00"),
                             jobs=[NEW_YEAR])  # 2025-01-01, long due
    await runner_for(db).run(burst=True)
    first, second = await rows(db)
    assert CRON_RUNS == [first.id] and first.status == "done"
    assert second.status == "queued"
    when = next_run("0 0 1 1 *", dt.datetime.now(UTC), "Asia/Shanghai")
    assert second.dedupe_key == f"cron:test-new-year:{when.isoformat(timespec='minutes')}"
    assert second.run_at == when.timestamp() > time.time()


async def test_a_burst_ends_though_an_every_minute_job_is_always_due_soon(db, runner_for, rows):
    CRON_RUNS.clear()
    async with db.session() as session, session.begin():
        await seed_cron_jobs(session, "Asia/Shanghai", jobs=[EVERY_MINUTE])  # due within the minute
    started = time.monotonic()
    await runner_for(db).run(burst=True)
    assert time.monotonic() - started < 5  # it did not wait for the occurrence, nor the one after
    (queued,) = await rows(db)
    assert queued.status == "queued" and queued.dedupe_key.startswith("cron:test-every-minute:")
    assert CRON_RUNS == []


def test_housekeeping_and_retention_run_through_cron():
    from bot.features import wiring

    declared = {job.name: (job.spec, job.kind) for job in wiring().cron}
    assert declared["members.housekeeping"] == ("0 3 * * *", "members.housekeeping")
    assert declared["retention"] == ("30 4 * * *", "jobs.retention")


tasks.install([every_minute])  # the jobs these tests run (the app installs its features')
install_cron_jobs([EVERY_MINUTE, NEW_YEAR])
