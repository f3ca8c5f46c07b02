"""Guides ask the app for a customer's card (`查 手机号` / `查 名字`): only their own customers;
store managers see their store; everyone else reads "not found"."""

from __future__ import annotations

import datetime as dt

from bot.members.cards import parse_lookup
from bot.members.orders import record_order
from bot.storage import utcnow
from tests.chat.conftest import seed_customer, seed_shop


async def ask_app(world, userid: str, text: str) -> str:
    before = [e for e in world.emulator.outbox if e["channel"] == "app" and e["to"] == userid]
    await world.driver.guide_writes_app(userid, text)
    await world.settle()
    after = [e for e in world.emulator.outbox if e["channel"] == "app" and e["to"] == userid]
    assert len(after) == len(before) + 1
    return after[-1]["text"]["content"]


async def seeded(world, chat_cfg) -> None:
    for userid in ("g1", "g2", "mgr1"):
        world.emulator.add_member(userid)
    db = world.services.db
    await seed_shop(db)
    await seed_customer(db, chat_cfg, "wm-zhang", name="张三", phone="13800138000", points=150, soon=20,
                        tags=["高客单", "VIP"])
    await seed_customer(db, chat_cfg, "wm-li", name="李四", guide="g2", store="S2", phone="13900139000", points=5)
    member_no = await seed_customer(db, chat_cfg, "wm-zhou", name="周五", guide="g1", phone="13700137000")
    async with db.session() as session, session.begin():
        await record_order(session, chat_cfg, {"order_no": "P1", "member_no": member_no, "store_code": "S1",
                                               "channel": "store", "amount_fen": 12850,
                                               "paid_at": utcnow() - dt.timedelta(days=2)})


def test_the_query_is_read_from_everyday_writing():
    assert parse_lookup("查 138 0013 8000") == "13800138000"
    assert parse_lookup("查１３８００１３８０００") == "13800138000"
    assert parse_lookup(" 查　张三 ") == "张三"


async def test_a_guide_gets_the_card_of_their_own_customer_by_phone_or_name(world, chat_cfg):
    await seeded(world, chat_cfg)
    card = await ask_app(world, "g1", "查 13800138000")
    assert "客户：张三（会员号 M" in card and "积分：170（20 将于" in card and "可用券：1 张" in card
    assert "满减券" in card and "标签：高客单、VIP" in card and "阶段：未购会员" in card and "最近消费：无" in card
    by_name = await ask_app(world, "g1", "查 周五")
    assert "客户：周五" in by_name and "¥128.50（静安旗舰店）" in by_name and "阶段：首购" in by_name


async def test_another_guides_customer_reads_as_not_found(world, chat_cfg):
    await seeded(world, chat_cfg)
    assert "没有找到您名下的客户「13900139000」" in await ask_app(world, "g1", "查 13900139000")
    assert "没有找到" in await ask_app(world, "g1", "查 李四")
    assert "客户：李四" in await ask_app(world, "g2", "查 李四")


async def test_a_store_manager_sees_the_whole_store_and_strangers_see_nothing(world, chat_cfg):
    await seeded(world, chat_cfg)
    store = await ask_app(world, "mgr1", "查 138 0013 8000")
    assert "客户：张三" in store
    assert "没有找到" in await ask_app(world, "mgr1", "查 李四")
    world.emulator.add_member("stranger")
    assert "只有导购和店长" in await ask_app(world, "stranger", "查 张三")
    assert "手机号或名字" in await ask_app(world, "g1", "查")
