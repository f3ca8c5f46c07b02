"""The per-process copy of channels, guides, stores and contact ways the add pipeline reads."""

from __future__ import annotations

from sqlalchemy import update

from bot.customers.binding import channel_and_store
from bot.customers.catalog import catalog_changed
from bot.customers.welcome import welcome_text
from bot.stores.models import Channel, ContactWay, Guide, Store


async def seed(world) -> None:
    async with world.services.db.session() as session, session.begin():
        session.add(Store(code="S1", name="一号店", city="上海", address="", lat=31.2, lng=121.4, status="open"))
        session.add(Channel(code="poster", name="海报", tag_names=[], welcome_text="我是{guide}，{store}欢迎您"))
        await session.flush()
        session.add(Guide(userid="ann", name="安", store_code="S1"))


async def test_rows_created_after_a_miss_are_found_at_once(world):
    services = world.services
    assert await channel_and_store(services, "poster.S1.abc", "ann") == ("direct", None, False)
    await seed(world)
    async with services.db.session() as session, session.begin():
        session.add(ContactWay(guide_userid="ann", channel_code="poster", store_code="S1", state="poster.S1.abc",
                               config_id="cfg1", qr_code="https://qr"))
    assert await channel_and_store(services, "poster.S1.abc", "ann") == ("poster", "S1", True)
    assert await welcome_text(services, "poster", "ann", "S1") == "我是安，一号店欢迎您"


async def test_an_edit_is_seen_once_the_version_moves(world):
    services = world.services
    await seed(world)
    assert await welcome_text(services, "poster", "ann", "S1") == "我是安，一号店欢迎您"
    async with services.db.session() as session, session.begin():
        await session.execute(update(Channel).where(Channel.code == "poster").values(welcome_text="{guide}在此"))
        await session.execute(update(Guide).where(Guide.userid == "ann").values(name="安妮"))
    assert await welcome_text(services, "poster", "ann", "S1") == "我是安，一号店欢迎您"  # the copy
    await catalog_changed(services.kv)
    services._customer_catalog._checked_at = 0  # the next look at the version, a second later
    assert await welcome_text(services, "poster", "ann", "S1") == "安妮在此"
