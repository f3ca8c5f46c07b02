"""An outage of the KV store or the database is waited out, not counted as failed attempts."""

from __future__ import annotations

import time

from bot.customers.welcome import WELCOME_JOB
from bot.jobs import enqueue, tasks
from bot.jobs.faults import is_transient_fault
from bot.kv import KVError, KVUnavailable, MemoryStore

SENT: list[str] = []


class FlakyKV(MemoryStore):
    """Refuses every call (connection refused) until `down_until`."""

    def __init__(self, down_until: float) -> None:
        super().__init__()
        self.down_until = down_until
        self.refused = 0

    async def set_if_absent(self, key, value, ttl):
        if time.time() < self.down_until:
            self.refused += 1
            raise KVUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().set_if_absent(key, value, ttl)


def _code_deadline(payload: dict) -> float:
    return payload["create_time"] + 20


@tasks("test.welcome_like", max_attempts=3, timeout=5, deadline=_code_deadline)
async def welcome_like(ctx, payload):
    await ctx.services.kv.set_if_absent(f"greeted:{payload['code']}", "1", ttl=60)
    SENT.append(payload["code"])


async def add(db, payload):
    async with db.session() as session, session.begin():
        await enqueue(session, "test.welcome_like", payload)


async def test_a_kv_outage_is_waited_out_without_spending_attempts(db, runner_for, rows):
    SENT.clear()
    kv = FlakyKV(down_until=time.time() + 1.5)  # longer than three ordinary back-offs
    await add(db, {"code": "W1", "create_time": int(time.time())})
    await runner_for(db, kv).run(burst=True)
    (job,) = await rows(db)
    assert kv.refused >= 2  # it really met the outage, more often than its 3 attempts allow... once each
    assert SENT == ["W1"]
    assert (job.status, job.attempts) == ("done", 1)  # the outage spent no attempt


async def test_past_its_deadline_the_job_expires_and_is_not_sent(db, runner_for, rows):
    SENT.clear()
    kv = FlakyKV(down_until=time.time() + 3600)  # down for longer than the code lives
    await add(db, {"code": "W2", "create_time": int(time.time()) - 19})  # 1 s of its 20 left
    started = time.monotonic()
    await runner_for(db, kv).run(burst=True)
    (job,) = await rows(db)
    assert SENT == []
    assert job.status == "expired" and "deadline" in job.last_error
    assert job.attempts <= 1 and time.monotonic() - started < 10


async def test_a_job_claimed_after_its_deadline_is_expired_without_running(db, runner_for, rows):
    SENT.clear()
    await add(db, {"code": "W3", "create_time": int(time.time()) - 60})
    await runner_for(db).run(burst=True)
    (job,) = await rows(db)
    assert (SENT, job.status) == ([], "expired")


def test_the_welcome_declares_its_code_lifetime_as_deadline():
    from bot.customers.welcome import send_welcome
    from bot.jobs.registry import declaration_of

    declared = declaration_of(send_welcome)
    assert declared.kind == WELCOME_JOB
    options = declared.options
    assert options.deadline({"create_time": 1_700_000_000}) == 1_700_000_020
    assert options.max_attempts == 3 and options.priority == 100 and options.timeout <= 20


def test_outages_are_transient_and_refusals_are_not():
    import asyncpg
    from sqlalchemy import exc as sa_exc

    assert is_transient_fault(KVUnavailable("connection refused"))
    assert is_transient_fault(ConnectionResetError("reset by peer"))
    busy = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    assert is_transient_fault(sa_exc.InterfaceError("SELECT 1", {}, busy))
    assert not is_transient_fault(KVError("WRONGTYPE Operation against a key holding the wrong kind of value"))
    assert not is_transient_fault(asyncpg.DataError("invalid input for query argument $1"))
    assert not is_transient_fault(ValueError("a bug"))


tasks.install([welcome_like])  # the jobs these tests run (the app installs its features')
