"""A page of 微信客服 messages is answered in the transaction that takes it in: the answers stored
with the cursor, one job sending them all, and a statement count that does not grow with the page."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.members.chat import answering, kf_sync
from bot.members.models import KfMessage
from bot.storage.models import Job
from tests.conftest import until
from tests.kf_batch.conftest import (
    KF,
    StatementCounter,
    seed_mall_coupon,
    seed_member,
    services_reading,
    text_message,
)


async def take_in(db, config, messages: list[dict]) -> int:
    async with db.session() as session, session.begin():
        return await kf_sync.sync_and_answer(session, services_reading(db, config, messages), KF, token=None)


async def queued(db, kind: str) -> list[Job]:
    async with db.session() as session:
        return list((await session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))).all())


async def test_a_page_is_answered_in_its_sync_and_sent_by_one_job(db, members_cfg):
    customers = [f"wm-p{i}" for i in range(12)]
    for index, customer in enumerate(customers):
        await seed_member(db, members_cfg, customer, points=100 + index)

    taken = await take_in(db, members_cfg, [text_message(f"q-{i}", c, "我还有多少积分？") for i, c in enumerate(customers)])

    assert taken == 12
    [send] = await queued(db, answering.SEND_JOB)
    assert await queued(db, answering.ANSWER_JOB) == []
    answers = {answer["touser"]: answer["text"]["content"] for answer in send.payload["answers"]}
    assert {who: f"您当前有 {100 + i} 积分" in answers[who] for i, who in enumerate(customers)} == \
        dict.fromkeys(customers, True)
    async with db.session() as session:  # stored with the cursor: a retried send repeats them exactly
        rows = (await session.scalars(select(KfMessage).order_by(KfMessage.msgid))).all()
    assert {row.intent for row in rows} == {"points"}
    assert sorted(row.reply["msgid"] for row in rows) == sorted(a["msgid"] for a in send.payload["answers"])


async def test_a_page_is_answered_in_statements_that_do_not_grow_with_its_customers(db, members_cfg):
    for index in range(32):
        await seed_member(db, members_cfg, f"wm-s{index}", points=10)
    await take_in(db, members_cfg, [text_message("warm-0", "wm-s0", "积分")])  # the account's cursor row exists now

    with StatementCounter(db) as one:
        await take_in(db, members_cfg, [text_message("one-1", "wm-s1", "积分")])
    with StatementCounter(db) as thirty:
        await take_in(db, members_cfg, [text_message(f"many-{i}", f"wm-s{i}", "积分") for i in range(2, 32)])

    # BEGIN, cursor, msgids, cursor update, members with their lapsing points, conversations, answers,
    # new conversations, the send job: the same for one customer as for thirty.
    assert thirty.count == one.count <= 9, (one.count, thirty.count)
    async with db.session() as session:  # and within those, every one of them answered
        replies = (await session.scalars(select(KfMessage.reply).where(KfMessage.msgid.like("many-%")))).all()
    assert len(replies) == 30 and all(reply and "积分" in reply["text"]["content"] for reply in replies)


async def test_a_customer_redeeming_in_the_page_reads_their_new_balance(db, members_cfg):
    await seed_mall_coupon(db)
    await seed_member(db, members_cfg, "wm-mall", points=150)
    await seed_member(db, members_cfg, "wm-plain", points=7)

    await take_in(db, members_cfg, [
        text_message("m-1", "wm-mall", "十元券", menu_id="mall:MALL10"),
        text_message("m-2", "wm-plain", "积分"),
        text_message("m-3", "wm-mall", "确认兑换", menu_id="mallok:MALL10"),
        text_message("m-4", "wm-mall", "我的积分"),
    ])

    [send] = await queued(db, answering.SEND_JOB)
    said = [(a["touser"], a["text"]["content"] if a["msgtype"] == "text" else a["msgmenu"]["head_content"])
            for a in send.payload["answers"]]
    assert [who for who, _ in said] == ["wm-mall", "wm-plain", "wm-mall", "wm-mall"]
    assert "确认用 100 积分兑换" in said[0][1] and "您当前有 7 积分" in said[1][1]
    assert "兑换成功" in said[2][1] and "您当前有 50 积分" in said[3][1]


async def test_a_page_taken_in_again_is_not_answered_again(db, members_cfg):
    await seed_member(db, members_cfg, "wm-again", points=5)
    page = [text_message("again-1", "wm-again", "积分")]
    assert await take_in(db, members_cfg, page) == 1
    assert await take_in(db, members_cfg, page) == 0  # a replayed cursor: nothing new, no second send
    assert len(await queued(db, answering.SEND_JOB)) == 1
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(KfMessage)) == 1


async def test_callbacks_of_an_account_do_not_queue_on_a_kv_lock(world, members_cfg):
    # One sync at a time per account is the cursor's row lock; a KV lock on the account would only
    # make a burst's callbacks wait for each other (on Redis by polling).
    world.emulator.add_kf_account(KF)
    await seed_member(world.services.db, members_cfg, "wm-nolock", points=42)
    async with world.services.kv.lock(f"customer:{KF}", timeout=30, wait=1):
        await world.driver.customer_writes_kf(KF, "wm-nolock", "积分")
        await until(lambda: [e for e in world.emulator.outbox if e.get("to") == "wm-nolock"], within=10)
    [answer] = [entry for entry in world.emulator.outbox if entry.get("to") == "wm-nolock"]
    assert "您当前有 42 积分" in answer["text"]["content"]
