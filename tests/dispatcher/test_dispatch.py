"""From the inbox to a handler: routing, filters, middlewares, statuses, exactly-once effects."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.dispatcher import Dispatcher, EventContext, Router
from bot.dispatcher.filters import build_filters
from bot.jobs import JobRunner
from bot.services import SERVICES
from bot.storage.models import InboxEvent
from bot.wecom.events import InboundEvent
from tests.callback.conftest import contact_event, post


def text_message(content: str, msg_id: int, sender: str = "guide01") -> str:
    return (f"<xml><ToUserName>ww</ToUserName><FromUserName>{sender}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>text</MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>218</AgentID></xml>")


def test_filters_match_on_fields_regex_and_sets():
    event = InboundEvent.from_xml(contact_event("wm1"))
    assert all(f(event) for f in build_filters(event="change_external_contact", change_type="add_external_contact"))
    assert not all(f(event) for f in build_filters(change_type="del_follow_user"))
    assert all(f(event) for f in build_filters(change_type={"add_external_contact", "add_half_external_contact"}))
    message = InboundEvent.from_xml(text_message(" 查 13800138000 ", 1))
    assert all(f(message) for f in build_filters(msg_type="text", content=re.compile(r"^查\s*\d+")))
    with pytest.raises(TypeError, match="unknown filter"):
        build_filters(colour="red")


async def test_first_matching_handler_runs_and_middlewares_wrap_it():
    order: list[str] = []
    parent, child = Dispatcher(), Router("child")

    async def outer(handler, ctx):
        order.append("outer-in")
        await handler(ctx)
        order.append("outer-out")

    parent.middlewares.append(outer)
    parent.include_router(child)

    @child.on(msg_type="text", content="hi")
    async def greet(ctx):
        order.append("greet")

    @child.on(msg_type="text")
    async def fallback(ctx):
        order.append("fallback")

    ctx = EventContext(event=InboundEvent.from_xml(text_message("hi", 1)), inbox_id=1, services=None)
    assert await parent.feed(ctx)
    assert order == ["outer-in", "greet", "outer-out"]
    unknown = EventContext(event=InboundEvent.from_xml(contact_event("wm")), inbox_id=2, services=None)
    assert not await parent.feed(unknown)


@pytest.fixture
async def service_client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, run_jobs=False))


async def drain(services) -> None:
    await JobRunner(services, poll_seconds=0.02, backoff_base=0.01).run(burst=True)


def use_only(services, router: Router) -> None:
    """Route to the test's router alone, through the production middlewares."""
    services.dispatcher = Dispatcher(middlewares=services.dispatcher.middlewares)
    services.dispatcher.include_router(router)


async def statuses(services) -> dict[str, str]:
    async with services.db.session() as session:
        rows = (await session.execute(select(InboxEvent.kind, InboxEvent.status))).all()
    return dict(rows)


async def test_unknown_event_is_recorded_as_ignored(service_client, crypto):
    sealed = crypto.seal("<xml><ToUserName>x</ToUserName><FromUserName>sys</FromUserName>"
                         f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
                         "<Event>some_future_event</Event></xml>")
    assert (await post(service_client, sealed)).status == 200
    services = service_client.app[SERVICES]
    await drain(services)
    assert await statuses(services) == {"event:some_future_event": "ignored"}


async def test_handler_effects_and_status_commit_once_even_when_run_twice(service_client, crypto):
    services = service_client.app[SERVICES]
    calls: list[str] = []
    router = Router("test")

    @router.on(msg_type="text", content="double")
    async def slow_handler(ctx: EventContext):
        calls.append(ctx.event.content)
        await asyncio.sleep(0.05)

    use_only(services, router)
    assert (await post(service_client, crypto.seal(text_message("double", 77)))).status == 200
    async with services.db.session() as session:
        inbox_id = await session.scalar(select(InboxEvent.id))
    # Two runs of the same dispatch at once (a worker whose lease lapsed, and its replacement).
    from bot.callback.inbox import dispatch_inbox_event
    from bot.jobs import JobContext

    job = JobContext(services=services, job_id=0, kind="inbox.dispatch", attempt=1)
    await asyncio.gather(*(dispatch_inbox_event(job, {"inbox_id": inbox_id}) for _ in range(2)))
    assert calls == ["double"]
    assert await statuses(services) == {"text": "handled"}


async def test_failing_handler_is_retried_then_marked_failed(service_client, crypto, make_settings):
    services = service_client.app[SERVICES]
    router = Router("test")
    attempts: list[int] = []

    @router.on(msg_type="text", content="explode")
    async def explode(ctx: EventContext):
        attempts.append(1)
        raise RuntimeError("handler bug")

    use_only(services, router)
    services.settings = make_settings(job_max_attempts=2)
    await post(service_client, crypto.seal(text_message("explode", 88)))
    from sqlalchemy import update

    from bot.storage.models import Job

    async with services.db.session() as session, session.begin():
        await session.execute(update(Job).values(max_attempts=2))
    await drain(services)
    async with services.db.session() as session:
        row = await session.scalar(select(InboxEvent))
    assert len(attempts) == 2
    assert (row.status, row.attempts) == ("failed", 2)
    assert "handler bug" in row.last_error


async def test_events_of_one_customer_never_run_at_the_same_time(service_client, crypto):
    services = service_client.app[SERVICES]
    router = Router("test")
    running: dict[str, int] = {}
    overlaps: list[str] = []

    @router.on(event="change_external_contact")
    async def track(ctx: EventContext):
        customer = ctx.event.external_user_id
        running[customer] = running.get(customer, 0) + 1
        if running[customer] > 1:
            overlaps.append(customer)
        await asyncio.sleep(0.02)
        running[customer] -= 1

    use_only(services, router)
    now = int(time.time())
    for i in range(6):
        for change in ("add_external_contact", "del_follow_user"):
            await post(service_client, crypto.seal(contact_event(f"wm{i % 2}", f"g{i}", now, change)))
    await drain(services)
    assert overlaps == []
    assert set((await statuses(services)).values()) == {"handled"}
