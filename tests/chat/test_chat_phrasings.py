"""The two questions customers ask all day, 30 ways each (typos, spaces, full-width, traditional),
end to end through the emulator; plus the classifier on its own."""

from __future__ import annotations

import pytest

from bot.members.chat.intents import classify, normalise
from tests.chat.conftest import KF, intents_of, replies_to, reply_text, seed_customer, seed_shop

POINTS_QUESTIONS = [
    "我还有多少积分?", "我还有多少积分？", "积分", "查积分", "我的积分", "积分余额", "积分多少",
    "我有多少积分啊", "我 还有 多少 积分", "  积分  ", "积份还剩多少", "我的积份", "机分多少",
    "还剩多少分", "我有几分了", "帮我查下积分", "查一下我的积分呗", "积分查询", "ＪＩＦＥＮ", "jifen",
    "我的積分", "積分還有多少", "现在积分是多少", "请问我的积分有多少？", "积分有多少了～", "余额",
    "我的分数", "points", "My Points?", "积分！！！",
]
COUPON_QUESTIONS = [
    "我有什么券", "我有什么券？", "我的券", "优惠券", "我的优惠券", "优惠卷", "我有优惠卷吗", "有没有优惠",
    "查优惠券", "我 的 优 惠 券", "代金券", "我的代金券还有吗", "有什么折扣券", "我有红包吗", "券",
    "卡券", "我的卡包", "我还有券吗？", "优惠券快过期了吗", "我的優惠券", "优惠劵", "ＣＯＵＰＯＮ", "coupon",
    "my coupons", "有没有可以用的券", "给我看看我的券", "查下券", "我的折扣", "我的优惠 券 有哪些", "券券券",
]


def test_thirty_ways_each_and_no_overlap():
    assert len(set(POINTS_QUESTIONS)) == 30 and len(set(COUPON_QUESTIONS)) == 30
    assert {classify(q)[0] for q in POINTS_QUESTIONS} == {"points"}, [q for q in POINTS_QUESTIONS if classify(q)[0] != "points"]
    assert {classify(q)[0] for q in COUPON_QUESTIONS} == {"coupons"}, [q for q in COUPON_QUESTIONS if classify(q)[0] != "coupons"]


@pytest.mark.parametrize("text, intent", [
    ("积分商城", "mall"), ("积分能换什么", "mall"), ("我想用积分兑换", "mall"), ("导购是谁", "guide"),
    ("你们店在哪", "guide"), ("几点开门", "guide"), ("营业时间", "guide"), ("帮助", "help"), ("菜单", "help"),
    ("怎么入会", "join"), ("我要注册会员", "join"), ("今天天气不错", "unknown"), ("", "unknown"), ("😀", "unknown"),
])
def test_other_intents(text, intent):
    assert classify(text)[0] == intent


def test_menu_taps_carry_their_own_meaning():
    assert classify("随便什么字", "menu:coupons") == ("coupons", "")
    assert classify("", "mall:MALL10") == ("mall_item", "MALL10")
    assert classify("", "mallok:MALL10") == ("mall_confirm", "MALL10")
    assert classify("", "mallno") == ("mall_cancel", "")


def test_normalise_folds_width_case_spaces_and_punctuation():
    assert normalise("  我 還有 多少　積分？！ ") == "我還有多少積分"
    assert normalise("ＡＢＣ１２３") == "abc123"


async def _ask_all(world, external_userid: str, questions: list[str]) -> list[dict]:
    """One after the other, as in a conversation (WeCom allows 5 answers per customer message)."""
    for question in questions:
        await world.driver.customer_writes_kf(KF, external_userid, question)
        await world.settle()
    return replies_to(world.emulator, external_userid)


async def test_thirty_points_questions_all_answered_with_the_balance(world, chat_cfg):
    world.emulator.add_kf_account(KF)
    await seed_shop(world.services.db)
    await seed_customer(world.services.db, chat_cfg, "wm-points", points=321)
    answers = await _ask_all(world, "wm-points", POINTS_QUESTIONS)
    assert len(answers) == 30 and all("您当前有 321 积分" in reply_text(a) for a in answers)
    assert await intents_of(world.services.db, "wm-points") == ["points"] * 30


async def test_thirty_coupon_questions_all_answered_with_the_coupons(world, chat_cfg):
    world.emulator.add_kf_account(KF)
    await seed_shop(world.services.db)
    await seed_customer(world.services.db, chat_cfg, "wm-coupons")
    answers = await _ask_all(world, "wm-coupons", COUPON_QUESTIONS)
    assert len(answers) == 30 and all("满减券（满199减20元）" in reply_text(a) for a in answers)
    assert await intents_of(world.services.db, "wm-coupons") == ["coupons"] * 30
