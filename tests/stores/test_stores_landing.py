"""The public side of a code: landing page, locate, choose, the city picker, fallbacks, bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.stores.models import FunnelEvent
from tests.stores.conftest import CUSTOMER_GCJ, lbs_world_on


@pytest.fixture
async def lbs_world(world):
    return await lbs_world_on(world)


FAR_AWAY = (23.1291, 113.2644)  # Guangzhou: no store within any radius used here


async def steps(world) -> list[tuple]:
    async with world.services.db.session() as session:
        rows = (await session.scalars(select(FunnelEvent).order_by(FunnelEvent.id))).all()
    return [(r.step, r.store_code, r.guide_userid, r.details.get("decision")) for r in rows]


async def test_landing_page_records_the_scan_and_names_the_visitor(lbs_world):
    world = lbs_world
    code = await world.seed()
    response = await world.client.get(f"/qr/{code}")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    assert f'data-code="{code}"' in page and "长按识别二维码" in page and 'lang="zh-CN"' in page
    assert "wa_v" in response.cookies
    offer = await world.locate(code, *CUSTOMER_GCJ)
    assert [s[0] for s in await steps(world)] == ["scan", "locate"]
    async with world.services.db.session() as session:
        scan, locate = (await session.scalars(select(FunnelEvent).order_by(FunnelEvent.id))).all()
    assert scan.visitor == locate.visitor == response.cookies["wa_v"].value  # the cookie jar sent it back
    assert locate.details["lat"] == round(CUSTOMER_GCJ[0], 3) and locate.store_code == offer["store"]["code"]


async def test_closed_store_is_never_offered_and_nearby_lists_others(lbs_world):
    world = lbs_world
    code = await world.seed(radius_m=20_000)
    near_bund = (31.2399, 121.4899)  # next to SH003, which is closed
    offer = await world.locate(code, *near_bund)
    assert offer["store"]["code"] == "SH001"
    assert [s["code"] for s in offer["nearby"]] == ["SH002"]
    assert all(s["distance_m"] > offer["store"]["distance_m"] for s in offer["nearby"])


async def test_out_of_range_offers_the_fallback_then_nothing(lbs_world):
    world = lbs_world
    code = await world.seed(fallback={"store_code": "BJ001"})
    offer = await world.locate(code, *FAR_AWAY)
    assert offer["decision"] == "fallback_store" and offer["store"]["code"] == "BJ001"
    assert offer["guide"]["userid"] == "dan" and offer["store"]["distance_m"] is None

    await world.api("POST", "/api/v1/channels", 201, json={"code": "bare", "name": "无兜底"})
    _, bare = await world.api("POST", "/api/v1/qrcodes", 201, json={"channel_code": "bare"})
    offer = await world.locate(bare["code"], *FAR_AWAY)
    assert (offer["decision"], offer["store"], offer["guide"], offer["qr_code"]) == ("out_of_range", None, None, None)
    assert (await steps(world))[-1] == ("locate", None, None, "out_of_range")


async def test_online_guide_fallback_when_the_store_has_nobody(lbs_world):
    world = lbs_world
    code = await world.seed(fallback={"guide_userid": "cai"})
    for userid in ("ann", "bo"):
        await world.api("PATCH", f"/api/v1/guides/{userid}", 200, json={"status": "on_leave"})
    await world.api("PATCH", "/api/v1/stores/SH002", 200, json={"status": "paused"})
    offer = await world.locate(code, *CUSTOMER_GCJ)
    # SH001 has no active guide and SH002 is paused: cai answers online, from his own store.
    assert offer["decision"] == "fallback_guide" and offer["guide"]["userid"] == "cai"


async def test_backup_guide_takes_over_outside_working_hours(lbs_world):
    world = lbs_world
    never = {"mon": []}  # works no day at all
    guides = [{"userid": "ann", "name": "安娜", "store_code": "SH001", "working_hours": never},
              {"userid": "bo", "name": "薄波", "store_code": "SH001", "is_backup": True}]
    code = await world.seed(guides=guides)
    offer = await world.locate(code, *CUSTOMER_GCJ)
    assert offer["guide"] == {"userid": "bo", "name": "薄波", "assigned_by": "backup"}


async def test_city_picker_and_choice(lbs_world):
    world = lbs_world
    code = await world.seed()
    picker = await (await world.client.get(f"/qr/{code}/stores")).json()
    assert [c["city"] for c in picker["cities"]] == ["上海", "北京"]
    assert [s["code"] for s in picker["cities"][0]["stores"]] == ["SH001", "SH002"]  # SH003 closed
    response = await world.client.post(f"/qr/{code}/choose", json={"store_code": "BJ001"})
    offer = await response.json()
    assert offer["decision"] == "chosen" and offer["guide"]["userid"] == "dan" and offer["qr_code"]
    assert (await steps(world))[-1] == ("choose", "BJ001", "dan", "chosen")
    response = await world.client.post(f"/qr/{code}/choose", json={"store_code": "SH003"})
    assert response.status == 404 and (await response.json())["error"]["code"] == "unknown_store"
    response = await world.client.post(f"/qr/{code}/choose", json={"store_code": "BJ001", "fallback": True})
    assert response.status == 400


@pytest.mark.parametrize(("body", "field"), [
    ({"lat": "31.2", "lng": 121.47}, "lat"),
    ({"lat": True, "lng": 121.47}, "lat"),
    ({"lat": 31.2}, "lng"),
    ({"lat": 31.2, "lng": 121.47, "coord_system": "utm"}, "coord_system"),
    (["31.2", "121.47"], ""),
])
async def test_locate_rejects_non_numbers_with_the_field(lbs_world, body, field):
    code = await lbs_world.seed()
    response = await lbs_world.client.post(f"/qr/{code}/locate", json=body)
    data = await response.json()
    assert response.status == 400 and data["error"]["code"] == "invalid_request"
    assert any(d["field"].startswith(field) for d in data["error"]["details"])
    assert await steps(lbs_world) == []  # a bad request leaves no funnel row


async def test_locate_rejects_out_of_range_and_malformed(lbs_world):
    world = lbs_world
    code = await world.seed()
    for lat, lng in ((90.5, 121.0), (31.0, -180.5)):
        response = await world.client.post(f"/qr/{code}/locate", json={"lat": lat, "lng": lng})
        data = await response.json()
        assert response.status == 400 and data["error"]["code"] == "invalid_coordinates"
    response = await world.client.post(f"/qr/{code}/locate", data=b"{not json")
    assert response.status == 400 and (await response.json())["error"]["code"] == "malformed_json"
    response = await world.client.post(f"/qr/{code}/locate", data=b'{"lat": NaN, "lng": 1}')
    assert response.status == 400


async def test_unknown_and_disabled_codes(lbs_world):
    world = lbs_world
    code = await world.seed()
    response = await world.client.get("/qr/nosuchcode")
    assert response.status == 404 and "二维码不存在" in await response.text()
    response = await world.client.post("/qr/nosuchcode/locate", json={"lat": 31.2, "lng": 121.4})
    assert (await response.json())["error"]["code"] == "unknown_code"
    await world.api("PATCH", f"/api/v1/qrcodes/{code}", 200, json={"status": "disabled"})
    response = await world.client.get(f"/qr/{code}")
    assert response.status == 410 and "已停用" in await response.text()
    response = await world.client.post(f"/qr/{code}/locate", json={"lat": 31.2, "lng": 121.4})
    assert response.status == 410 and (await response.json())["error"]["code"] == "code_disabled"
    assert await steps(world) == []


async def test_store_without_coordinates_is_only_in_the_picker(lbs_world):
    world = lbs_world
    code = await world.seed()
    await world.api("POST", "/api/v1/stores", 201, json={"code": "SH009", "name": "无坐标店", "city": "上海"})
    world.emulator.add_member("eve2")
    await world.api("POST", "/api/v1/guides", 201, json={"userid": "eve2", "name": "E", "store_code": "SH009"})
    offer = await world.locate(code, *CUSTOMER_GCJ)
    assert "SH009" not in [offer["store"]["code"], *[s["code"] for s in offer["nearby"]]]
    picker = await (await world.client.get(f"/qr/{code}/stores")).json()
    assert "SH009" in [s["code"] for s in picker["cities"][0]["stores"]]
