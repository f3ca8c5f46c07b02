"""A guide leaves: customers move through WeCom's transfer APIs, history stays, transfer_fail reverts."""

from __future__ import annotations

import pytest

from bot.api.auth import Role, create_token
from tests.stores.conftest import bearer, lbs_world_on, until


@pytest.fixture
async def lbs_world(world):
    return await lbs_world_on(world)


async def bound_customers(world, code: str, customers: list[str]) -> None:
    for external_userid in customers:
        await world.customer_scans_and_adds(code, external_userid)

    async def all_tagged():
        _, page = await world.api("GET", "/api/v1/customers?guide_userid=ann", 200)
        return len([c for c in page["customers"] if c["tags"]]) == len(customers)

    await until(all_tagged)


async def test_handover_of_an_active_guide_moves_customers_and_keeps_history(lbs_world):
    world = lbs_world
    code = await world.seed(guide_rule="fixed", channel={"code": "poster", "name": "海报", "tag_names": ["海报"]})
    await world.api("PATCH", "/api/v1/guides/ann", 200, json={"daily_add_limit": 10})
    await bound_customers(world, code, ["wm1", "wm2"])
    world.emulator.add_customer("wmStranger")  # not ann's friend: WeCom refuses this one

    _, result = await world.api("POST", "/api/v1/guides/ann/handover", 200,
                                json={"external_userids": ["wm1", "wm2", "wmStranger"]})
    assert result["takeover_userid"] == "bo" and result["mode"] == "active" and result["moved"] == 2
    assert result["failed"] == [{"external_userid": "wmStranger", "errcode": 40131}]
    [call] = world.emulator.calls_to("externalcontact/transfer_customer")
    assert call["body"]["handover_userid"] == "ann" and call["body"]["takeover_userid"] == "bo"

    _, customer = await world.api("GET", "/api/v1/customers/wm1", 200)
    assert customer["guide"]["code"] == "bo" and customer["status"] == "bound"
    assert [(b["guide_userid"], b["source"], b["end_reason"]) for b in customer["bindings"]] == [
        ("ann", "scan", "handover"), ("bo", "handover", None)]


async def test_resigned_guide_uses_the_resigned_api_and_transfer_fail_reverts(lbs_world):
    world = lbs_world
    code = await world.seed(guide_rule="fixed")
    await bound_customers(world, code, ["wm1"])
    await world.api("PATCH", "/api/v1/guides/ann", 200, json={"status": "resigned"})
    world.emulator.members["ann"].resigned = True
    _, result = await world.api("POST", "/api/v1/guides/ann/handover", 200, json={"takeover_userid": "cai"})
    assert (result["mode"], result["moved"], result["failed"]) == ("resigned", 1, [])
    assert world.emulator.calls_to("externalcontact/resigned/transfer_customer")

    # The customer refuses: WeCom tells the takeover's side, the customer goes back to ann.
    assert (await world.driver.handover_fails("cai", "wm1", "customer_refused"))["http_status"] == 200

    async def reverted():
        _, customer = await world.api("GET", "/api/v1/customers/wm1", 200)
        return customer if customer["guide"]["code"] == "ann" else None

    customer = await until(reverted)
    assert [(b["guide_userid"], b["source"], b["end_reason"]) for b in customer["bindings"]] == [
        ("ann", "scan", "handover"), ("cai", "handover", "transfer_fail:customer_refused"), ("ann", "restored", None)]


async def test_handover_bad_input(lbs_world):
    world = lbs_world
    await world.seed(guides=[{"userid": "ann", "name": "安娜", "store_code": "SH001"}])
    status, data = await world.api("POST", "/api/v1/guides/ghost/handover", json={})
    assert (status, data["error"]["code"]) == (404, "unknown_guide")
    status, data = await world.api("POST", "/api/v1/guides/ann/handover", json={})
    assert (status, data["error"]["code"]) == (409, "no_takeover")
    status, data = await world.api("POST", "/api/v1/guides/ann/handover", json={"takeover_userid": "ann"})
    assert (status, data["error"]["code"]) == (422, "invalid_takeover")
    manager = bearer(await create_token(world.services.db, Role.STORE_MANAGER, store_codes=["SH001"]))
    status, _ = await world.api("POST", "/api/v1/guides/ann/handover", json={}, headers=manager)
    assert status == 403  # attribution moves only by HQ


async def test_customers_list_filters_and_scopes(lbs_world):
    world = lbs_world
    code = await world.seed(guide_rule="fixed")
    await bound_customers(world, code, ["wm1", "wm2"])
    await world.driver.customer_adds_guide("wmBj", "dan")
    await until(lambda: _count(world, "store_code=BJ001", 1))

    _, page = await world.api("GET", "/api/v1/customers?tag=新客", 200)
    assert sorted(c["external_userid"] for c in page["customers"]) == ["wm1", "wm2"]
    _, page = await world.api("GET", "/api/v1/customers?channel_code=direct", 200)
    assert [c["external_userid"] for c in page["customers"]] == ["wmBj"]
    _, first = await world.api("GET", "/api/v1/customers?limit=1", 200)
    _, rest = await world.api("GET", f"/api/v1/customers?before_id={first['customers'][0]['id']}", 200)
    assert len(rest["customers"]) == 2
    status, data = await world.api("GET", "/api/v1/customers?status=gone")
    assert status == 400

    manager = bearer(await create_token(world.services.db, Role.STORE_MANAGER, store_codes=["BJ001"]))
    _, page = await world.api("GET", "/api/v1/customers", 200, headers=manager)
    assert [c["external_userid"] for c in page["customers"]] == ["wmBj"]
    status, data = await world.api("GET", "/api/v1/customers/wm1", headers=manager)
    assert (status, data["error"]["code"]) == (404, "unknown_customer")
    guide = bearer(await create_token(world.services.db, Role.GUIDE, guide_userid="ann"))
    _, page = await world.api("GET", "/api/v1/customers", 200, headers=guide)
    assert sorted(c["external_userid"] for c in page["customers"]) == ["wm1", "wm2"]


async def _count(world, query: str, expected: int) -> bool:
    _, page = await world.api("GET", f"/api/v1/customers?{query}", 200)
    return len(page["customers"]) == expected
