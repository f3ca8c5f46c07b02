"""End to end through the emulator: scan → locate → add → bound, tagged and welcomed; the limits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.customers.models import CustomerBinding
from bot.stores.models import ContactWay, FunnelEvent
from tests.stores.conftest import CUSTOMER_GCJ, lbs_world_on, until


@pytest.fixture
async def lbs_world(world):
    return await lbs_world_on(world)


WELCOME_PATH = "externalcontact/send_welcome_msg"


def welcomes(world, external_userid):
    return [m for m in world.emulator.outbox if m["channel"] == "welcome" and m["to"] == external_userid]


async def test_scan_locate_add_binds_tags_and_welcomes(lbs_world):
    world = lbs_world
    code = await world.seed()
    offer = await world.customer_scans_and_adds(code, "wmAlice")
    assert offer["store"]["code"] == "SH001" and offer["decision"] == "nearest"
    assert 250 < offer["store"]["distance_m"] < 400
    assert offer["guide"]["userid"] in ("ann", "bo")
    guide = offer["guide"]["userid"]

    await until(lambda: welcomes(world, "wmAlice"))
    welcome = welcomes(world, "wmAlice")[0]
    assert welcome["sender"] == guide
    greeting, benefit = welcome["text"]["content"].split("\n")
    assert greeting == f"欢迎！我是{offer['guide']['name']}，上海人民广场店的导购。"
    assert benefit.startswith("🎁 新人礼：")  # the members feature's coupon, issued with the binding

    async def customer_tagged():
        _, data = await world.api("GET", "/api/v1/customers/wmAlice", 200)
        return data if data["tags"] and data["name"] else None

    customer = await until(customer_tagged)
    assert customer["guide"] == {"code": guide, "name": offer["guide"]["name"]}
    assert customer["store"] == {"code": "SH001", "name": "上海人民广场店"}
    assert customer["channel"]["code"] == "poster" and customer["status"] == "bound"
    assert sorted(customer["tags"]) == ["新客", "海报"] and customer["name"] == "客户wmAlice"
    [binding] = customer["bindings"]
    assert binding["source"] == "scan" and binding["qrcode_code"] == code and binding["ended_at"] is None
    # The tags exist in WeCom now and sit on the guide's side of the friendship.
    follow = world.emulator.customers["wmAlice"].follows[guide]
    assert {world.emulator.tags[t].name for t in follow.tag_ids} == {"海报", "新客"}


async def test_contact_way_made_once_per_guide_and_channel_and_recreated_when_lost(lbs_world):
    world = lbs_world
    code = await world.seed(guide_rule="fixed")
    first = await world.locate(code, *CUSTOMER_GCJ)
    again = await world.locate(code, *CUSTOMER_GCJ)
    assert first["qr_code"] == again["qr_code"]
    assert len(world.emulator.calls_to("externalcontact/add_contact_way")) == 1
    async with world.services.db.session() as session:
        way = await session.scalar(select(ContactWay).where(ContactWay.guide_userid == first["guide"]["userid"]))
    assert len(way.state) <= 30 and way.state.startswith("poster.SH001.")
    assert world.emulator.contact_ways[way.config_id]["state"] == way.state

    # An admin deletes it in the console; the next check (after the cache) recreates it, same state.
    del world.emulator.contact_ways[way.config_id]
    await world.services.kv.delete(f"contact_way_qr:{way.guide_userid}:poster")
    renewed = await world.locate(code, *CUSTOMER_GCJ)
    assert renewed["qr_code"] != first["qr_code"]
    [new_way] = [w for w in world.emulator.contact_ways.values()]
    assert new_way["state"] == way.state and new_way["user"] == [first["guide"]["userid"]]


async def test_daily_limit_moves_the_next_customer_to_another_guide(lbs_world):
    world = lbs_world
    code = await world.seed(guide_rule="fixed")  # fixed: ann takes everyone while she can
    for customer in ("wm1", "wm2"):
        offer = await world.customer_scans_and_adds(code, customer)
        assert offer["guide"]["userid"] == "ann"
        await until(lambda c=customer: welcomes(world, c))
    # ann reached her limit of 2 today: bo takes the next customer, then bo too is full.
    offer = await world.customer_scans_and_adds(code, "wm3")
    assert offer["guide"]["userid"] == "bo"
    await until(lambda: welcomes(world, "wm3"))
    await world.customer_scans_and_adds(code, "wm4")
    await until(lambda: welcomes(world, "wm4"))
    # Everyone at SH001 is full: the next nearest store in range (SH002, 2.9 km) takes over.
    offer = await world.locate(code, *CUSTOMER_GCJ)
    assert offer["store"]["code"] == "SH002" and offer["decision"] == "next_nearest"
    assert offer["guide"]["userid"] == "cai"


async def test_round_robin_alternates_between_guides(lbs_world):
    world = lbs_world
    code = await world.seed()
    picks = [(await world.locate(code, *CUSTOMER_GCJ))["guide"]["userid"] for _ in range(4)]
    assert picks in (["ann", "bo", "ann", "bo"], ["bo", "ann", "bo", "ann"])


async def test_delete_ends_binding_and_re_add_restores_it(lbs_world):
    world = lbs_world
    code = await world.seed(guide_rule="fixed")
    offer = await world.customer_scans_and_adds(code, "wmBob")
    await until(lambda: welcomes(world, "wmBob"))
    await world.driver.customer_deletes_guide("wmBob", "ann")

    async def status_is(expected):
        _, data = await world.api("GET", "/api/v1/customers/wmBob", 200)
        return data if data["status"] == expected else None

    unbound = await until(lambda: status_is("unbound"))
    assert unbound["bindings"][0]["end_reason"] == "customer_deleted"
    assert unbound["guide"]["code"] == "ann"  # attribution is remembered while unbound

    config_id = offer["qr_code"].rsplit("/", 1)[1].removesuffix(".png")
    world.emulator.clock.advance(60)  # a person re-adds later (not the add_half → add pair of one add)
    await world.driver.customer_scans_contact_way(config_id, "wmBob")
    restored = await until(lambda: status_is("bound"))
    assert [b["ended_at"] is None for b in restored["bindings"]] == [False, True]
    assert restored["guide"]["code"] == "ann"
    # The re-add greets again with its own code, but the new-member benefit came only the first time.
    await until(lambda: len(welcomes(world, "wmBob")) == 2)
    first, second = (m["text"]["content"] for m in welcomes(world, "wmBob"))
    assert "新人礼" in first and "新人礼" not in second


async def test_direct_add_and_undecodable_state_bind_to_the_guides_store(lbs_world):
    world = lbs_world
    await world.seed()
    await world.driver.customer_adds_guide("wmDirect", "cai")
    await world.driver.customer_adds_guide("wmForged", "dan", state="not-one-of-ours")

    async def bound(external_userid):
        status, data = await world.api("GET", f"/api/v1/customers/{external_userid}")
        return data if status == 200 else None

    direct = await until(lambda: bound("wmDirect"))
    forged = await until(lambda: bound("wmForged"))
    assert (direct["store"]["code"], direct["channel"]["code"]) == ("SH002", "direct")
    assert (forged["store"]["code"], forged["channel"]["code"]) == ("BJ001", "direct")
    assert forged["bindings"][0]["state"] == "not-one-of-ours"
    async with world.services.db.session() as session:
        add = await session.scalar(select(FunnelEvent).where(FunnelEvent.step == "add",
                                                             FunnelEvent.guide_userid == "dan"))
        bindings = (await session.scalars(select(CustomerBinding))).all()
    assert add.details["undecodable_state"] == "not-one-of-ours"
    assert {b.source for b in bindings} == {"direct"}
