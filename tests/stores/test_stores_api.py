"""Admin API for stores, guides, channels and codes: datums, scope, and every bad input's answer."""

from __future__ import annotations

import pytest

from bot.api.auth import Role, create_token
from bot.lbs import to_gcj02
from tests.stores.conftest import bearer, lbs_world_on


@pytest.fixture
async def lbs_world(world):
    return await lbs_world_on(world)


# eviltransform's Shanghai vector: WGS-84 → GCJ-02, ~475 m apart on the ground map.
SHANGHAI_WGS = (31.1774276, 121.5272106)
SHANGHAI_GCJ = (31.17530398364597, 121.531541859215)


async def test_store_coordinates_in_any_datum_are_stored_as_gcj02(lbs_world):
    world = lbs_world
    baidu = [round(x, 7) for x in _bd09(*SHANGHAI_GCJ)]
    for code, system, (lat, lng) in (("W", "wgs84", SHANGHAI_WGS), ("G", "gcj02", SHANGHAI_GCJ),
                                     ("B", "bd09", baidu)):
        await world.api("POST", "/api/v1/stores", 201,
                        json={"code": code, "name": code, "lat": lat, "lng": lng, "coord_system": system})
    for code in "WGB":
        _, store = await world.api("GET", f"/api/v1/stores/{code}", 200)
        assert (store["lat"], store["lng"]) == pytest.approx(SHANGHAI_GCJ, abs=2e-6), code


def _bd09(lat, lng):
    from bot.lbs import from_gcj02

    return from_gcj02(lat, lng, "bd09")


async def test_locate_converts_the_browser_datum_unlike_peers_that_mixed_them(lbs_world):
    """A peer treated WGS-84 browser positions as map (GCJ-02) positions: customers ~500 m off."""
    world = lbs_world
    await world.api("POST", "/api/v1/stores", 201, json={
        "code": "REAL", "name": "顾客所在的店", "lat": SHANGHAI_GCJ[0], "lng": SHANGHAI_GCJ[1]})
    # A decoy exactly where the unconverted WGS-84 position would fall on the GCJ-02 map.
    await world.api("POST", "/api/v1/stores", 201, json={
        "code": "DECOY", "name": "诱饵店", "lat": SHANGHAI_WGS[0], "lng": SHANGHAI_WGS[1]})
    for userid, store in (("g1", "REAL"), ("g2", "DECOY")):
        world.emulator.add_member(userid)
        await world.api("POST", "/api/v1/guides", 201, json={"userid": userid, "name": userid, "store_code": store})
    await world.api("POST", "/api/v1/channels", 201, json={"code": "c", "name": "c"})
    _, qr = await world.api("POST", "/api/v1/qrcodes", 201, json={"channel_code": "c"})
    offer = await world.locate(qr["code"], *SHANGHAI_WGS, coord_system="wgs84")
    assert offer["store"]["code"] == "REAL" and offer["store"]["distance_m"] == 0
    assert [s["code"] for s in offer["nearby"]] == ["DECOY"]
    assert 400 < offer["nearby"][0]["distance_m"] < 550
    assert to_gcj02(*SHANGHAI_WGS, "wgs84") == pytest.approx(SHANGHAI_GCJ, abs=1e-9)


@pytest.mark.parametrize(("body", "field"), [
    ({"lat": 91, "lng": 121.4}, ""),
    ({"lat": 31.2, "lng": 181}, ""),
    ({"lat": "31.2", "lng": 121.4, "coord_system": "wgs84", "note": 1}, "note"),
    ({"lat": "north", "lng": 121.4}, "lat"),
    ({"lat": 31.2}, ""),
    ({"lat": 31.2, "lng": 121.4, "coord_system": "mercator"}, "coord_system"),
    ({"name": "", "lat": 31.2, "lng": 121.4}, "name"),
    ({"code": "有空格 code"}, "code"),
    ({"opening_hours": {"mon": ["25:00-26:00"]}}, "opening_hours"),
    ({"opening_hours": {"someday": ["10:00-22:00"]}}, "opening_hours"),
])
async def test_bad_store_input_is_a_400_naming_the_field(lbs_world, body, field):
    payload = {"code": "S1", "name": "店", **body}
    status, data = await lbs_world.api("POST", "/api/v1/stores", json=payload)
    assert status == 400 and data["error"]["code"] == "invalid_request", data
    assert any(d["field"].startswith(field) for d in data["error"]["details"]), data
    status, _ = await lbs_world.api("GET", "/api/v1/stores/S1")
    assert status == 404  # nothing half-written


async def test_conflicts_unknowns_and_patch(lbs_world):
    world = lbs_world
    store = {"code": "S1", "name": "一号店", "city": "上海", "lat": 31.23, "lng": 121.47}
    await world.api("POST", "/api/v1/stores", 201, json=store)
    status, data = await world.api("POST", "/api/v1/stores", json=store)
    assert (status, data["error"]["code"]) == (409, "store_exists")
    world.emulator.add_member("u")  # a guide must be a member of the corp in WeCom
    status, data = await world.api("POST", "/api/v1/guides", json={"userid": "u", "name": "u", "store_code": "NOPE"})
    assert (status, data["error"]["code"]) == (404, "unknown_store")
    await world.api("POST", "/api/v1/guides", 201, json={"userid": "u", "name": "u", "store_code": "S1"})
    status, data = await world.api("POST", "/api/v1/guides", json={"userid": "u", "name": "u", "store_code": "S1"})
    assert (status, data["error"]["code"]) == (409, "guide_exists")
    status, data = await world.api("PATCH", "/api/v1/guides/u", json={"store_code": "NOPE"})
    assert (status, data["error"]["code"]) == (404, "unknown_store")
    _, guide = await world.api("PATCH", "/api/v1/guides/u", 200,
                               json={"status": "on_leave", "working_hours": {"mon": "09:00-18:00"}})
    assert guide["status"] == "on_leave" and guide["working_hours"] == {"mon": ["09:00-18:00"]}
    _, patched = await world.api("PATCH", "/api/v1/stores/S1", 200,
                                 json={"status": "paused", "lat": 39.9, "lng": 116.4, "coord_system": "bd09"})
    assert patched["status"] == "paused" and patched["lat"] == pytest.approx(39.8940, abs=1e-3)
    status, data = await world.api("PATCH", "/api/v1/stores/S9", json={"status": "open"})
    assert (status, data["error"]["code"]) == (404, "unknown_store")
    _, listing = await world.api("GET", "/api/v1/stores?city=上海&status=paused", 200)
    assert [s["code"] for s in listing["stores"]] == ["S1"]


async def test_store_manager_sees_and_edits_only_their_stores(lbs_world):
    world = lbs_world
    for code in ("S1", "S2"):
        await world.api("POST", "/api/v1/stores", 201, json={"code": code, "name": code})
    manager = bearer(await create_token(world.services.db, Role.STORE_MANAGER, store_codes=["S1"]))
    _, listing = await world.api("GET", "/api/v1/stores", 200, headers=manager)
    assert [s["code"] for s in listing["stores"]] == ["S1"]
    status, data = await world.api("PATCH", "/api/v1/stores/S2", headers=manager, json={"status": "closed"})
    assert (status, data["error"]["code"]) == (403, "forbidden")
    status, _ = await world.api("POST", "/api/v1/guides", headers=manager,
                                json={"userid": "x", "name": "x", "store_code": "S2"})
    assert status == 403
    world.emulator.add_member("y")
    await world.api("POST", "/api/v1/guides", 201, headers=manager, json={"userid": "y", "name": "y", "store_code": "S1"})
    status, _ = await world.api("POST", "/api/v1/stores", headers=manager, json={"code": "S3", "name": "S3"})
    assert status == 403  # only HQ opens stores


async def test_qrcode_creation_checks_references_and_serves_images(lbs_world):
    world = lbs_world
    status, data = await world.api("POST", "/api/v1/qrcodes",
                                   json={"channel_code": "ghost", "fallback": {"store_code": "nowhere"}})
    assert (status, data["error"]["code"]) == (422, "unknown_reference")
    assert {d["field"] for d in data["error"]["details"]} == {"channel_code", "fallback.store_code"}
    status, data = await world.api("POST", "/api/v1/qrcodes", json={"channel_code": "x", "radius_m": 10})
    assert status == 400 and data["error"]["details"][0]["field"] == "radius_m"
    status, data = await world.api("POST", "/api/v1/channels", json={"code": "c", "name": "c", "tag_names": ["x" * 31]})
    assert status == 400
    await world.api("POST", "/api/v1/channels", 201, json={"code": "c", "name": "海报", "tag_names": ["a", "a"]})
    _, channels = await world.api("GET", "/api/v1/channels", 200)
    assert channels["channels"][0]["tag_names"] == ["a"]
    _, qr = await world.api("POST", "/api/v1/qrcodes", 201, json={"channel_code": "c", "radius_m": 3000})
    assert qr["landing_url"] == f"{world.settings.public_base_url.rstrip('/')}/qr/{qr['code']}"
    assert qr["guide_rule"] == "round_robin" and qr["status"] == "active"
    png = await world.client.get(f"/qr/{qr['code']}.png")
    assert png.status == 200 and (await png.read()).startswith(b"\x89PNG")
    svg = await world.client.get(f"/qr/{qr['code']}.svg")
    assert svg.status == 200 and b"<svg" in await svg.read()
    assert (await world.client.get("/qr/zzzzzzzz.png")).status == 404
