"""Faults found by bench/outage.py: a job with a deadline (the 20 s welcome) must outlive them.

- kill -9 of the worker mid-burst: its welcome jobs stayed `running` under the 60 s lease and
  expired unsent (10 of 500) before any worker could take them back.
- Redis down 10 s: the welcomes that met the outage first backed off 8-16 s at a time and their
  last try came after the deadline (7 of 500 expired), though Redis was back for seconds.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from sqlalchemy import select

from bot.jobs import JobRunner, enqueue, tasks
from bot.jobs.runner import DEADLINE_LEASE_SECONDS
from bot.kv import MemoryStore
from bot.storage.models import Job

RAN: list[str] = []


@tasks("test.faults.welcome_like", max_attempts=3, timeout=5, deadline=lambda payload: payload["create_time"] + 20)
async def welcome_like(ctx, payload):
    RAN.append(payload["code"])


@tasks("test.faults.plain")
async def plain(ctx, payload):
    RAN.append(payload["code"])


def runner(db, **options) -> JobRunner:
    services = SimpleNamespace(db=db, kv=MemoryStore(),
                               settings=SimpleNamespace(job_max_attempts=6, timezone="Asia/Shanghai"))
    return JobRunner(services, poll_seconds=0.05, backoff_base=0.01, **options)


async def test_a_dead_workers_welcome_is_taken_back_before_its_code_expires(db):
    RAN.clear()
    async with db.session() as session, session.begin():
        await enqueue(session, "test.faults.welcome_like", {"code": "W1", "create_time": time.time()})
        await enqueue(session, "test.faults.plain", {"code": "P1"})
    dead = runner(db, lease_seconds=60, worker_id="killed-worker")
    claimed_at = time.time()
    assert len(await dead._claim(2)) == 2  # claimed, then the process is killed -9 (never runs them)
    async with db.session() as session:
        leases = dict((await session.execute(select(Job.kind, Job.lease_until))).all())
    assert leases["test.faults.welcome_like"] <= claimed_at + DEADLINE_LEASE_SECONDS + 1
    assert leases["test.faults.plain"] >= claimed_at + 59  # other jobs keep the long lease

    restarted = runner(db, lease_seconds=60)
    task = asyncio.create_task(restarted.run())
    try:
        deadline = time.monotonic() + 15  # the code lives 20 s; with the 60 s lease it expired
        while "W1" not in RAN and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        restarted.stop()
        await asyncio.wait_for(task, 10)
    assert RAN == ["W1"]  # the plain job waits out its lease: a worker that is only slow keeps it
    async with db.session() as session:
        statuses = dict((await session.execute(select(Job.kind, Job.status))).all())
    assert statuses == {"test.faults.welcome_like": "done", "test.faults.plain": "running"}


def test_during_an_outage_a_deadline_job_tries_again_within_a_third_of_the_time_it_has_left():
    job = Job(id=1, kind="test.faults.welcome_like", attempts=1, faults=6, max_attempts=3, run_at=time.time(),
              payload={})
    deadline = time.time() + 15
    outcome = runner(SimpleNamespace(is_sqlite=True))._after_transient_fault(job, "KVUnavailable", deadline)
    # Before: a 30 s back-off step, cut only to the last moment (deadline - 0.05 s).
    assert outcome.status == "queued" and outcome.run_at <= time.time() + 15 / 3 + 0.1


tasks.install([welcome_like, plain])  # the jobs these tests run (the app installs its features')
