"""A burst of 微信客服 callbacks of one account is dispatched by a few jobs, not one each; every
message is answered exactly once, a callback that comes while a sync runs is still answered, and
every inbox row ends handled."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.callback.inbox import DISPATCH_JOB, GROUP_DISPATCH_JOB
from bot.members.chat import answering, kf_sync
from bot.storage.models import InboxEvent, Job
from tests.chat.conftest import KF, replies_to, reply_text
from tests.chat.test_chat_cursor import prepared, wait_for_replies


async def jobs_of(world, kind: str) -> int:
    async with world.services.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind))


async def inbox_statuses(world) -> dict[str, int]:
    async with world.services.db.session() as session:
        return dict((await session.execute(
            select(InboxEvent.status, func.count()).group_by(InboxEvent.status))).all())


async def test_a_burst_of_callbacks_is_a_few_dispatch_jobs_and_each_message_is_answered_once(world, chat_cfg):
    customers = [f"wm-burst{i}" for i in range(30)]
    await prepared(world, chat_cfg, *customers)
    await asyncio.gather(*(world.driver.customer_writes_kf(KF, c, "我还有多少积分") for c in customers))
    for index, customer in enumerate(customers):
        [answer] = await wait_for_replies(world, customer, 1)
        assert f"您当前有 {100 + index} 积分" in reply_text(answer)
    await asyncio.sleep(0.2)
    kf_out = [entry for entry in world.emulator.outbox if entry["channel"] == "kf"]
    assert len(kf_out) == 30 and len({entry["msgid"] for entry in kf_out}) == 30
    assert await jobs_of(world, DISPATCH_JOB) == 0
    assert 1 <= await jobs_of(world, GROUP_DISPATCH_JOB) <= 6, "one job per callback, not per burst"
    assert await inbox_statuses(world) == {"handled": 30}
    # The dispatch sent the answers itself after its commit: the send jobs (fallbacks) never ran.
    async with world.services.db.session() as session:
        sends = (await session.execute(select(Job.status, Job.attempts).where(Job.kind == answering.SEND_JOB))).all()
    assert sends and set(sends) == {("done", 0)}


async def test_answers_the_dispatch_could_not_send_are_sent_by_the_fallback_job_once(world, chat_cfg, monkeypatch):
    await prepared(world, chat_cfg, "wm-late")
    real_send, calls = answering.send_answers, []

    async def fail_first(wecom, answers):
        calls.append(len(answers))
        if len(calls) == 1:
            raise ConnectionError("WeCom unreachable for a moment")
        await real_send(wecom, answers)

    monkeypatch.setattr(answering, "send_answers", fail_first)
    await world.driver.customer_writes_kf(KF, "wm-late", "积分")
    [answer] = await wait_for_replies(world, "wm-late", 1, within=answering.SEND_FALLBACK_SECONDS + 10)
    assert "100 积分" in reply_text(answer) and calls == [1, 1]
    async with world.services.db.session() as session:
        sends = (await session.execute(select(Job.status, Job.attempts).where(Job.kind == answering.SEND_JOB))).all()
    assert sends == [("done", 1)] and await inbox_statuses(world) == {"handled": 1}


async def test_a_callback_while_a_sync_runs_is_still_answered(world, chat_cfg, monkeypatch):
    await prepared(world, chat_cfg, "wm-first", "wm-second")
    real_page, synced, release = kf_sync._page, asyncio.Event(), asyncio.Event()

    async def page_then_hold(*args, **kwargs):
        page = await real_page(*args, **kwargs)
        if not synced.is_set():  # the first sync has read WeCom's queue: hold it there
            synced.set()
            await release.wait()
        return page

    monkeypatch.setattr(kf_sync, "_page", page_then_hold)
    await world.driver.customer_writes_kf(KF, "wm-first", "积分")
    await asyncio.wait_for(synced.wait(), 10)
    # The second message reaches WeCom after the running sync read the queue; its callback comes now.
    second = asyncio.create_task(world.driver.customer_writes_kf(KF, "wm-second", "积分"))
    await asyncio.sleep(0.3)
    release.set()
    await second
    [first_answer] = await wait_for_replies(world, "wm-first", 1)
    [second_answer] = await wait_for_replies(world, "wm-second", 1)
    assert "100 积分" in reply_text(first_answer) and "101 积分" in reply_text(second_answer)
    await asyncio.sleep(0.2)
    assert len(replies_to(world.emulator, "wm-first")) == 1 and len(replies_to(world.emulator, "wm-second")) == 1
    assert await jobs_of(world, GROUP_DISPATCH_JOB) == 2
    assert await inbox_statuses(world) == {"handled": 2}
