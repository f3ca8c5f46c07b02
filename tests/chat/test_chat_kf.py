"""微信客服 end to end through the emulator: every intent, the points mall, joining, the welcome."""

from __future__ import annotations

from sqlalchemy import select

from bot.members.models import Coupon, Member
from tests.chat.conftest import (
    KF,
    intents_of,
    menu_ids,
    replies_to,
    reply_text,
    seed_customer,
    seed_shop,
)


async def ask(world, external_userid: str, text: str, menu_id: str | None = None) -> dict:
    """The customer writes; returns the answer that reached the emulator."""
    before = len(replies_to(world.emulator, external_userid))
    await world.driver.customer_writes_kf(KF, external_userid, text, menu_id=menu_id)
    await world.settle()
    answers = replies_to(world.emulator, external_userid)
    assert len(answers) == before + 1, [reply_text(a) for a in answers[before:]]
    return answers[-1]


async def setup(world, chat_cfg, **customer) -> str:
    world.emulator.add_kf_account(KF, "门店小助手")
    await seed_shop(world.services.db)
    return await seed_customer(world.services.db, chat_cfg, "wm-zhang", **customer)


async def test_every_intent_gets_its_answer(world, chat_cfg):
    await setup(world, chat_cfg, points=120, soon=30)
    assert "您当前有 150 积分" in reply_text(points := await ask(world, "wm-zhang", "我还有多少积分?"))
    assert "30 积分将于" in reply_text(points)
    coupons = reply_text(await ask(world, "wm-zhang", "我有什么券"))
    assert "1 张可用优惠券" in coupons and "满减券（满199减20元）" in coupons
    mall = await ask(world, "wm-zhang", "积分商城")
    assert mall["msgtype"] == "msgmenu" and menu_ids(mall) == ["mall:MALL10"]
    guide = reply_text(await ask(world, "wm-zhang", "我的导购是谁"))
    assert "小王" in guide and "静安旗舰店" in guide and "南京西路1号" in guide and "每天 10:00-22:00" in guide
    help_menu = await ask(world, "wm-zhang", "帮助")
    assert menu_ids(help_menu) == ["menu:points", "menu:coupons", "menu:mall", "menu:guide"]
    unknown = await ask(world, "wm-zhang", "今天天气怎么样")
    assert "没太明白" in reply_text(unknown) and menu_ids(unknown)[0] == "menu:points"
    tapped = reply_text(await ask(world, "wm-zhang", "查积分", menu_id="menu:points"))
    assert "您当前有 150 积分" in tapped
    assert await intents_of(world.services.db, "wm-zhang") == [
        "points", "coupons", "mall", "guide", "help", "unknown", "points"]


async def test_points_mall_asks_for_confirmation_then_redeems_once(world, chat_cfg):
    await setup(world, chat_cfg, points=150)
    confirm = await ask(world, "wm-zhang", "十元券", menu_id="mall:MALL10")
    assert "确认用 100 积分兑换" in reply_text(confirm) and menu_ids(confirm) == ["mallok:MALL10", "mallno"]
    done = reply_text(await ask(world, "wm-zhang", "确认兑换", menu_id="mallok:MALL10"))
    assert "兑换成功" in done and "剩余 50 积分" in done
    again = reply_text(await ask(world, "wm-zhang", "确认兑换", menu_id="mallok:MALL10"))
    assert "已经处理过" in again
    async with world.services.db.session() as session:
        member = await session.scalar(select(Member).where(Member.external_userid == "wm-zhang"))
        mall = (await session.scalars(select(Coupon).where(Coupon.member_id == member.id, Coupon.source == "mall"))).all()
    assert member.points_balance == 50 and len(mall) == 1


async def test_mall_without_enough_points_says_so_and_changes_nothing(world, chat_cfg):
    await setup(world, chat_cfg, points=60)
    await ask(world, "wm-zhang", "十元券", menu_id="mall:MALL10")
    refused = reply_text(await ask(world, "wm-zhang", "确认"))  # typed, not tapped
    assert "积分不足" in refused and "需要 100 积分" in refused and "当前有 60 积分" in refused
    async with world.services.db.session() as session:
        member = await session.scalar(select(Member).where(Member.external_userid == "wm-zhang"))
        mall = await session.scalar(select(Coupon).where(Coupon.source == "mall"))
    assert member.points_balance == 60 and mall is None


async def test_cancel_and_a_stray_confirm_redeem_nothing(world, chat_cfg):
    await setup(world, chat_cfg, points=500)
    await ask(world, "wm-zhang", "十元券", menu_id="mall:MALL10")
    assert "已取消" in reply_text(await ask(world, "wm-zhang", "取消", menu_id="mallno"))
    assert menu_ids(await ask(world, "wm-zhang", "好的"))[0] == "menu:points"  # nothing pending: help
    async with world.services.db.session() as session:
        assert (await session.scalar(select(Member).where(Member.external_userid == "wm-zhang"))).points_balance == 500


async def test_a_non_member_is_told_how_to_join_and_can_join(world, chat_cfg):
    await setup(world, chat_cfg, member=False)
    assert "您还不是会员" in reply_text(await ask(world, "wm-zhang", "我的积分"))
    assert "回复「入会」" in reply_text(await ask(world, "wm-zhang", "我有什么优惠券"))
    joined = reply_text(await ask(world, "wm-zhang", "我要入会"))
    assert "欢迎加入" in joined and "新人专享券" in joined
    coupons = reply_text(await ask(world, "wm-zhang", "我的券"))
    assert "新人专享券（无门槛减10元）" in coupons
    assert "已经是会员" in reply_text(await ask(world, "wm-zhang", "入会"))


async def test_entering_the_session_gets_a_welcome_with_the_menu(world, chat_cfg):
    await setup(world, chat_cfg, points=88)
    await world.driver.customer_enters_kf_session(KF, "wm-zhang")
    await world.settle()
    [welcome] = replies_to(world.emulator, "wm-zhang", channel="kf_welcome")
    assert "欢迎回来" in reply_text(welcome) and "88 积分" in reply_text(welcome)
    assert menu_ids(welcome) == ["menu:points", "menu:coupons", "menu:mall", "menu:guide"]
    assert replies_to(world.emulator, "wm-zhang") == []  # no kf/send_msg for an event


def test_reply_text_reads_menus_like_a_customer():
    entry = {"msgtype": "msgmenu", "msgmenu": {"head_content": "选择", "list": [
        {"type": "click", "click": {"id": "menu:points", "content": "查积分"}}], "tail_content": "完"}}
    assert reply_text(entry) == "选择 [查积分] 完" and menu_ids(entry) == ["menu:points"]
