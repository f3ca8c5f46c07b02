"""Coalesced dispatch (a router's `coalesce` key): one queued job per key takes every pending event
of it; the key is released when the job starts, so an event that comes while it runs gets a job of
its own; a failure leaves the rows pending for the retry; every row ends handled or ignored."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, update

from bot.app import create_app
from bot.callback.inbox import GROUP_DISPATCH_JOB, dispatch_inbox_group
from bot.dispatcher import Dispatcher, EventContext, Router
from bot.jobs import JobContext
from bot.jobs.runner import claim_statement
from bot.services import SERVICES
from bot.storage.models import InboxEvent, Job
from bot.wecom.events import InboundEvent


def kf_event(account: str, n: int) -> InboundEvent:
    return InboundEvent.from_xml(
        f"<xml><ToUserName>ww</ToUserName><FromUserName>sys</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType>event</MsgType><Event>kf_msg_or_event</Event><Token>tok{n}</Token>"
        f"<OpenKfId>{account}</OpenKfId></xml>")


@pytest.fixture
async def services(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    return client.app[SERVICES]


def coalescing_router(seen: list, fail: list | None = None) -> Router:
    router = Router("test")
    router.coalesce(lambda event: f"kf:{event.get('OpenKfId')}" if event.event == "kf_msg_or_event" else None)

    @router.on(msg_type="event", event="kf_msg_or_event")
    async def handler(ctx: EventContext):
        if fail:
            fail.pop()
            raise RuntimeError("crashed mid-way")
        seen.append((ctx.event.get("Token"), ctx.received_at))

    return router


def wire(services, router: Router) -> None:
    services.dispatcher = Dispatcher(middlewares=services.dispatcher.middlewares)
    services.dispatcher.include_router(router)
    services.inbox.coalesce = services.dispatcher.coalesce_keys()


async def group_jobs(services) -> list:
    async with services.db.session() as session:
        return list((await session.execute(
            select(Job.id, Job.dedupe_key, Job.status, Job.payload).where(Job.kind == GROUP_DISPATCH_JOB)
            .order_by(Job.id))).all())


async def statuses(services) -> dict[str, int]:
    async with services.db.session() as session:
        rows = await session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status))
        return dict(rows.all())


async def start_queued(services) -> list:
    """What a worker's claim does to the queued jobs (the key of a group dispatch is released)."""
    now = time.time()
    async with services.db.engine.begin() as conn:
        return list((await conn.execute(claim_statement(
            100, now, now + 60, "test-worker", key_released_kinds=(GROUP_DISPATCH_JOB,)))).all())


def job(services, attempt: int = 1) -> JobContext:
    return JobContext(services=services, job_id=0, kind=GROUP_DISPATCH_JOB, attempt=attempt)


async def test_callbacks_of_an_account_share_one_queued_job_which_handles_them_all_once(services):
    seen = []
    wire(services, coalescing_router(seen))
    for n in range(10):
        assert await services.inbox.store(kf_event("wkA", n)) is not None
    await services.inbox.store(kf_event("wkB", 99))
    jobs = await group_jobs(services)
    assert [(j.dedupe_key, j.payload) for j in jobs] == [
        ("inbox-group:kf:wkA", {"dispatch_key": "kf:wkA"}), ("inbox-group:kf:wkB", {"dispatch_key": "kf:wkB"})]
    assert await services.inbox.store(kf_event("wkA", 3)) is None  # WeCom's retry: still deduplicated

    await dispatch_inbox_group(job(services), jobs[0].payload)
    assert [token for token, _ in seen] == ["tok9"]  # once, for the newest callback
    async with services.db.session() as session:
        newest = await session.scalar(select(func.max(InboxEvent.received_at)).where(InboxEvent.dispatch_key == "kf:wkA"))
    assert seen[0][1] == newest  # the claim returned received_at: no read of its own
    assert await statuses(services) == {"handled": 10, "pending": 1}
    await dispatch_inbox_group(job(services), jobs[0].payload)  # a second run finds nothing to do
    assert len(seen) == 1


async def test_a_callback_while_the_job_runs_gets_a_job_of_its_own(services):
    seen = []
    wire(services, coalescing_router(seen))
    await services.inbox.store(kf_event("wkA", 1))
    [started] = await start_queued(services)
    assert started.dedupe_key is None  # released when it started
    # Its sync may already have read WeCom's messages: this callback must not ride on it.
    await services.inbox.store(kf_event("wkA", 2))
    jobs = await group_jobs(services)
    assert [j.status for j in jobs] == ["running", "queued"]
    await dispatch_inbox_group(job(services), started.payload)  # ran late here: it takes both rows
    await dispatch_inbox_group(job(services), jobs[1].payload)
    assert [token for token, _ in seen] == ["tok2"]
    assert await statuses(services) == {"handled": 2}


async def test_a_failure_leaves_the_rows_pending_for_the_retry_and_the_last_try_marks_them_failed(services):
    seen, fail = [], [1, 1]
    wire(services, coalescing_router(seen, fail))
    for n in range(3):
        await services.inbox.store(kf_event("wkA", n))
    payload = {"dispatch_key": "kf:wkA"}
    with pytest.raises(RuntimeError):
        await dispatch_inbox_group(job(services, attempt=1), payload)
    assert await statuses(services) == {"pending": 3}
    async with services.db.session() as session:
        errors = set(await session.scalars(select(InboxEvent.last_error)))
    assert errors == {"RuntimeError: crashed mid-way"}
    with pytest.raises(RuntimeError):
        await dispatch_inbox_group(job(services, attempt=services.settings.job_max_attempts), payload)
    assert await statuses(services) == {"failed": 3}
    # A later callback's dispatch (any sync of the account reads their messages) takes them too.
    await services.inbox.store(kf_event("wkA", 7))
    await dispatch_inbox_group(job(services), payload)
    assert seen == [("tok7", seen[0][1])] and await statuses(services) == {"handled": 4}


async def test_events_no_handler_wants_end_ignored(services):
    wire(services, Router("nothing"))
    services.inbox.coalesce = [lambda event: "k"]
    for n in range(2):
        await services.inbox.store(kf_event("wkA", n))
    await dispatch_inbox_group(job(services), {"dispatch_key": "k"})
    assert await statuses(services) == {"ignored": 2}


async def test_a_finished_job_left_holding_the_key_is_queued_again_not_swallowing_callbacks(services):
    seen = []
    wire(services, coalescing_router(seen))
    await services.inbox.store(kf_event("wkA", 1))
    async with services.db.session() as session, session.begin():  # as an older worker would leave it
        await session.execute(update(Job).where(Job.kind == GROUP_DISPATCH_JOB)
                              .values(status="dead", attempts=1, last_error="unknown job kind"))
    await services.inbox.store(kf_event("wkA", 2))
    [requeued] = await group_jobs(services)
    assert requeued.status == "queued" and requeued.dedupe_key == "inbox-group:kf:wkA"
    [started] = await start_queued(services)
    await dispatch_inbox_group(job(services), started.payload)
    assert [token for token, _ in seen] == ["tok2"] and await statuses(services) == {"handled": 2}
