"""A guide who writes 「帮助」, something the app does not understand, or taps an unknown menu gets
the list of commands."""

import pytest


async def app_reply(world, userid: str, send) -> str:
    before = [e for e in world.emulator.outbox if e["channel"] == "app" and e["to"] == userid]
    await send()
    await world.settle()
    after = [e for e in world.emulator.outbox if e["channel"] == "app" and e["to"] == userid]
    assert len(after) == len(before) + 1
    return after[-1]["text"]["content"]


@pytest.mark.parametrize("text", ["帮助", " help ", "？"])
async def test_help_lists_the_commands(world, text):
    world.emulator.add_member("g1")
    reply = await app_reply(world, "g1", lambda: world.driver.guide_writes_app("g1", text))
    assert reply.startswith("可以发送：") and "「查 手机号 / 查 姓名」" in reply and "「帮助」" in reply


async def test_an_unknown_menu_or_message_answers_with_the_commands(world):
    world.emulator.add_member("g1")
    menu = await app_reply(world, "g1", lambda: world.driver.guide_taps_menu("g1", "NO_SUCH_KEY"))
    assert menu.startswith("这个菜单暂时没有功能。") and "「查 手机号 / 查 姓名」" in menu
    text = await app_reply(world, "g1", lambda: world.driver.guide_writes_app("g1", "今天天气怎么样"))
    assert text.startswith("没有看懂这条消息。") and "「帮助」" in text


async def test_a_lookup_still_reaches_the_lookup(world):
    world.emulator.add_member("g1")
    reply = await app_reply(world, "g1", lambda: world.driver.guide_writes_app("g1", "查 13800138000"))
    assert reply == "只有导购和店长可以查询客户。"  # the lookup's own answer to a non-guide
