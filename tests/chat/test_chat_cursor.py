"""No 微信客服 message answered twice or skipped: across restarts, a lost cursor, a crash mid-way,
concurrent callbacks on two service instances; and nothing sent outside WeCom's window."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from sqlalchemy import func, select, update

from bot.app import create_app
from bot.members.chat import answering, kf_sync
from bot.members.config import MembersConfig
from bot.members.models import KfCursor, KfMessage
from bot.services import SERVICES
from bot.storage.models import Job
from tests.chat.conftest import KF, replies_to, reply_text, seed_customer, seed_shop


async def prepared(world, chat_cfg, *customers: str) -> None:
    world.emulator.add_kf_account(KF)
    await seed_shop(world.services.db)
    for index, customer in enumerate(customers):
        await seed_customer(world.services.db, chat_cfg, customer, points=100 + index)


async def wait_for_replies(world, customer: str, count: int, within: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(replies_to(world.emulator, customer)) >= count:
            break
        await asyncio.sleep(0.05)
    await world.settle()
    return replies_to(world.emulator, customer)


async def test_the_cursor_survives_a_restart_and_a_lost_cursor_answers_nothing_twice(world, chat_cfg, aiohttp_client):
    await prepared(world, chat_cfg, "wm-a")
    await world.driver.customer_writes_kf(KF, "wm-a", "积分")
    assert len(await wait_for_replies(world, "wm-a", 1)) == 1
    await world.client.close()  # the service stops; the emulator and the database stay

    restarted = await aiohttp_client(create_app(world.settings, run_jobs=True, configs=[chat_cfg]))
    world.services = restarted.app[SERVICES]
    world.emulator.callback_url = world.driver.callback_url = str(restarted.make_url("/wecom/callback"))
    await world.driver.customer_writes_kf(KF, "wm-a", "我的券")
    answers = await wait_for_replies(world, "wm-a", 2)
    assert [a["msgtype"] for a in answers] == ["text", "text"] and "可用优惠券" in reply_text(answers[1])

    # Even a cursor lost (or replayed by WeCom) cannot answer a handled message again.
    async with world.services.db.session() as session, session.begin():
        await session.execute(update(KfCursor).values(cursor=""))
    await world.driver.customer_writes_kf(KF, "wm-a", "帮助")
    answers = await wait_for_replies(world, "wm-a", 3)
    await asyncio.sleep(0.2)
    assert len(replies_to(world.emulator, "wm-a")) == 3 and answers[2]["msgtype"] == "msgmenu"


async def test_a_crash_before_commit_rereads_and_answers_exactly_once(world, chat_cfg, monkeypatch):
    await prepared(world, chat_cfg, "wm-b")
    real, calls = answering.answer_messages, []

    async def crash_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker died mid-way")
        return await real(*args, **kwargs)

    monkeypatch.setattr(kf_sync, "answer_messages", crash_once)
    await world.driver.customer_writes_kf(KF, "wm-b", "积分")
    answers = await wait_for_replies(world, "wm-b", 1)
    await asyncio.sleep(0.2)
    assert len(calls) == 2 and len(replies_to(world.emulator, "wm-b")) == 1 and "100 积分" in reply_text(answers[0])


async def test_concurrent_callbacks_on_two_instances_answer_each_message_once(world, chat_cfg, aiohttp_client):
    customers = [f"wm-c{i}" for i in range(20)]
    await prepared(world, chat_cfg, *customers)
    second = await aiohttp_client(create_app(world.settings, run_jobs=True, configs=[chat_cfg]))
    urls = [world.driver.callback_url, str(second.make_url("/wecom/callback"))]

    async def write(index: int, customer: str) -> None:
        world.driver.callback_url = urls[index % 2]  # WeCom's callbacks land on either instance
        await world.driver.customer_writes_kf(KF, customer, "我还有多少积分")

    await asyncio.gather(*(write(i, c) for i, c in enumerate(customers)))
    for index, customer in enumerate(customers):
        [answer] = await wait_for_replies(world, customer, 1)
        assert f"您当前有 {100 + index} 积分" in reply_text(answer)
    kf_out = [entry for entry in world.emulator.outbox if entry["channel"] == "kf"]
    assert len(kf_out) == 20 and len({entry["msgid"] for entry in kf_out}) == 20
    async with world.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(KfMessage)) == 20


class FakeKf:
    def __init__(self, messages: list[dict]):
        self.messages = messages

    async def sync_msg(self, **params) -> dict:
        return {"next_cursor": "1", "has_more": 0, "msg_list": self.messages}


async def intake_then_answer(db, config: MembersConfig, messages: list[dict]) -> tuple[int, list[dict]]:
    """Take the messages in as a callback would; the answers its send job carries."""
    services = SimpleNamespace(db=db, wecom=SimpleNamespace(kf=FakeKf(messages)),
                               config={MembersConfig: config}.__getitem__)
    async with db.session() as session, session.begin():
        taken = await kf_sync.sync_and_answer(session, services, KF, token=None)
    async with db.session() as session:
        jobs = (await session.scalars(select(Job).where(Job.kind == answering.SEND_JOB))).all()
    return taken, [answer for job in jobs for answer in job.payload["answers"]]


def text_message(msgid: str, customer: str, sent: int, content: str) -> dict:
    return {"msgid": msgid, "open_kfid": KF, "external_userid": customer, "origin": 3, "msgtype": "text",
            "send_time": sent, "text": {"content": content}}


async def test_no_answer_outside_the_48_hour_window(db, chat_cfg):
    taken, answers = await intake_then_answer(db, chat_cfg, [text_message("old-1", "wm-late", int(time.time()) - 49 * 3600, "积分")])
    assert taken == 1 and answers == []
    async with db.session() as session:
        row = await session.get(KfMessage, "old-1")
        assert row.intent == "points" and row.reply == {}
        assert (await session.get(KfCursor, KF)).cursor == "1"


async def test_a_burst_read_in_one_page_gets_at_most_five_answers(db, chat_cfg):
    # Answers to a burst go out after the customer's last message, so they all count against the
    # window that message opened: WeCom would refuse a sixth.
    now = int(time.time())
    taken, answers = await intake_then_answer(db, chat_cfg, [text_message(f"b-{i}", "wm-busy", now - 10 + i, "帮助")
                                                   for i in range(7)])
    assert taken == 7 and len(answers) == 5
    assert len({answer["msgid"] for answer in answers}) == 5
