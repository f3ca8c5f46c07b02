"""The dispatch job locks the customer, then claims its inbox row, runs the handler and records the
outcome in one transaction (the row's plaintext comes back from the claim: no read before)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import event, select

from bot.app import create_app
from bot.callback.inbox import DISPATCH_JOB, dispatch_inbox_event
from bot.dispatcher import Dispatcher, EventContext, Router
from bot.jobs import JobContext
from bot.services import SERVICES
from bot.storage.models import InboxEvent, Job


def text_message(content: str, msg_id: int, sender: str = "guide01") -> str:
    return (f"<xml><ToUserName>ww</ToUserName><FromUserName>{sender}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>text</MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>218</AgentID></xml>")


@pytest.fixture
async def services(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    return client.app[SERVICES]


def routed_to(services, router: Router) -> None:
    services.dispatcher = Dispatcher(middlewares=services.dispatcher.middlewares)
    services.dispatcher.include_router(router)


async def kept(services, plaintext: str, msg_id: int) -> dict:
    """Keep the event through the real intake; its dispatch job's payload."""
    from bot.wecom.events import InboundEvent

    inbox_id = await services.inbox.store(InboundEvent.from_xml(plaintext))
    async with services.db.session() as session:
        payloads = list(await session.scalars(select(Job.payload).where(Job.kind == DISPATCH_JOB)))
    return next(p for p in payloads if p["inbox_id"] == inbox_id)


async def status(services, inbox_id: int) -> tuple[str, int]:
    async with services.db.session() as session:
        row = await session.get(InboxEvent, inbox_id)
        return row.status, row.attempts


def job(services, attempt: int = 1) -> JobContext:
    return JobContext(services=services, job_id=0, kind=DISPATCH_JOB, attempt=attempt)


async def test_intake_gives_the_job_the_lock_key_and_the_handler_runs_once_in_the_claims_transaction(services):
    seen, router = [], Router("test")

    @router.on(msg_type="text", content="hello")
    async def handler(ctx: EventContext):
        seen.append((ctx.event.content, ctx.session is not None))
        await asyncio.sleep(0.05)

    routed_to(services, router)
    payload = await kept(services, text_message("hello", 1, sender="guide07"), 1)
    assert payload["customer"] is None  # a guide's message: no customer to lock
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(services.db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        await asyncio.gather(*(dispatch_inbox_event(job(services), payload) for _ in range(2)))
    finally:
        event.remove(services.db.engine.sync_engine, "before_cursor_execute", listener)
    assert seen == [("hello", True)]
    assert await status(services, payload["inbox_id"]) == ("handled", 1)
    assert not [s for s in statements if s.startswith("SELECT") and "inbox_events" in s]  # no read before


async def test_an_add_event_carries_its_customer_as_the_lock_key(services):
    add = (f"<xml><ToUserName>ww</ToUserName><FromUserName>sys</FromUserName><CreateTime>{int(time.time())}"
           "</CreateTime><MsgType>event</MsgType><Event>change_external_contact</Event>"
           "<ChangeType>add_external_contact</ChangeType><UserID>guide01</UserID>"
           "<ExternalUserID>wmLockKey</ExternalUserID></xml>")
    payload = await kept(services, add, 2)
    assert payload["customer"] == "wmLockKey"


async def test_a_failing_handler_leaves_nothing_and_the_event_pending_then_failed(services):
    router = Router("test")

    @router.on(msg_type="text", content="explode")
    async def explode(ctx: EventContext):
        await ctx.enqueue("test.never", {})  # written in the transaction, rolled back with it
        raise RuntimeError("handler bug")

    routed_to(services, router)
    payload = await kept(services, text_message("explode", 3), 3)
    with pytest.raises(RuntimeError):
        await dispatch_inbox_event(job(services, attempt=1), payload)
    assert await status(services, payload["inbox_id"]) == ("pending", 1)
    with pytest.raises(RuntimeError):
        await dispatch_inbox_event(job(services, attempt=services.settings.job_max_attempts), payload)
    assert await status(services, payload["inbox_id"]) == ("failed", 2)
    async with services.db.session() as session:
        assert list(await session.scalars(select(Job).where(Job.kind == "test.never"))) == []


async def test_an_event_no_handler_wants_is_recorded_as_ignored(services):
    routed_to(services, Router("nothing"))
    payload = await kept(services, text_message("anyone?", 4), 4)
    await dispatch_inbox_event(job(services), payload)
    assert await status(services, payload["inbox_id"]) == ("ignored", 1)
