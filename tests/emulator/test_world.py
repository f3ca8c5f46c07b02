"""The end-to-end harness itself: the service answers the emulator's encrypted callbacks."""

from sqlalchemy import select

from bot.storage.models import InboxEvent


async def test_emulated_add_reaches_the_inbox_and_is_dispatched(world):
    world.emulator.add_member("guide01", "张三")
    result = await world.driver.customer_adds_guide("wmWorld01", "guide01", name="李四")
    assert result["http_status"] == 200
    await world.settle()
    async with world.services.db.session() as session:
        row = await session.scalar(select(InboxEvent))
    assert row.external_user_id == "wmWorld01" and row.user_id == "guide01"
    assert row.status in ("handled", "ignored")


async def test_the_service_client_talks_to_the_emulator(world):
    world.emulator.add_member("guide02", "王五")
    answer = await world.services.wecom.message.send(touser="guide02", msgtype="text",
                                                     text={"content": "你好"})
    assert answer["errcode"] == 0
    assert world.emulator.calls_to("gettoken")
