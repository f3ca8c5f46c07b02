"""Fixtures and helpers of the store tests (the binding and landing tests use them too).

`lbs_world_on(world)` wraps conftest's `world` (the service with its in-process job runner, a real
emulator over HTTP, a driver that plays WeCom's callbacks) with an HQ token and `seed()`: three
Shanghai stores (two guides at the nearest, one store closed) and one in Beijing. Each test file
declares a two-line `lbs_world` fixture over it (importing a fixture trips ruff's F811).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.api.auth import Role, create_token
from bot.emulator import EmulatorDriver, EmulatorState
from tests.conftest import until  # noqa: F401  (tests here and beside use it)

# People's Square, Shanghai, in GCJ-02 (what Tencent/AMap show), and a customer ~300 m north-east.
PEOPLES_SQUARE = (31.2304, 121.4737)
CUSTOMER_GCJ = (31.2330, 121.4750)

STORES = [
    {"code": "SH001", "name": "上海人民广场店", "city": "上海", "address": "南京东路1号",
     "lat": 31.2304, "lng": 121.4737, "coord_system": "gcj02"},
    {"code": "SH002", "name": "上海静安寺店", "city": "上海", "address": "南京西路1618号",
     "lat": 31.2236, "lng": 121.4452, "coord_system": "gcj02"},
    {"code": "SH003", "name": "上海外滩店", "city": "上海", "address": "中山东一路1号",
     "lat": 31.2400, "lng": 121.4900, "coord_system": "gcj02", "status": "closed"},
    {"code": "BJ001", "name": "北京王府井店", "city": "北京", "address": "王府井大街1号",
     "lat": 39.9142, "lng": 116.4109, "coord_system": "gcj02"},
]
GUIDES = [
    {"userid": "ann", "name": "安娜", "store_code": "SH001", "daily_add_limit": 2},
    {"userid": "bo", "name": "薄波", "store_code": "SH001", "daily_add_limit": 2},
    {"userid": "cai", "name": "蔡晨", "store_code": "SH002"},
    {"userid": "dan", "name": "丹丹", "store_code": "BJ001"},
    {"userid": "eve", "name": "伊娃", "store_code": "SH003"},
]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}




@dataclass
class LbsWorld:
    client: object
    services: object
    emulator: EmulatorState
    driver: EmulatorDriver
    settings: object
    hq: dict

    async def api(self, method: str, path: str, expect: int | None = None, headers: dict | None = None, **kw):
        response = await self.client.request(method, path, headers=headers or self.hq, **kw)
        data = await response.json()
        if expect is not None:
            assert response.status == expect, (response.status, data)
        return response.status, data

    async def seed(self, guides=GUIDES, stores=STORES, channel: dict | None = None, **code_options) -> str:
        """Stores, guides, a channel with two tags and a QR code; returns the code."""
        for store in stores:
            await self.api("POST", "/api/v1/stores", 201, json=store)
        for guide in guides:
            await self.api("POST", "/api/v1/guides", 201, json=guide)
        channel = channel or {"code": "poster", "name": "门店海报", "tag_names": ["海报", "新客"],
                              "welcome_text": "欢迎！我是{guide}，{store}的导购。"}
        await self.api("POST", "/api/v1/channels", 201, json=channel)
        _, qrcode = await self.api("POST", "/api/v1/qrcodes", 201,
                                   json={"channel_code": channel["code"], **code_options})
        return qrcode["code"]

    async def locate(self, code: str, lat: float, lng: float, coord_system: str = "gcj02", expect: int = 200):
        response = await self.client.post(f"/qr/{code}/locate",
                                          json={"lat": lat, "lng": lng, "coord_system": coord_system})
        data = await response.json()
        assert response.status == expect, data
        return data

    async def customer_scans_and_adds(self, code: str, external_userid: str, point=CUSTOMER_GCJ) -> dict:
        """The whole customer path: locate, then add the offered guide through their contact way."""
        offer = await self.locate(code, *point)
        config_id = offer["qr_code"].rsplit("/", 1)[1].removesuffix(".png")
        result = await self.driver.customer_scans_contact_way(config_id, external_userid, name=f"客户{external_userid}")
        assert result["http_status"] == 200
        # The welcome leaves at intake, the binding when the event is dispatched: wait for the binding.
        guide = offer["guide"]["userid"]

        async def bound():
            status, data = await self.api("GET", f"/api/v1/customers/{external_userid}")
            return status == 200 and any(
                b["guide_userid"] == guide and b["ended_at"] is None for b in data["bindings"])

        await until(bound)
        return offer


async def lbs_world_on(world) -> LbsWorld:
    """Wrap conftest's `world` (service ↔ emulator) with the seeding helpers and an HQ token."""
    for guide in GUIDES:
        world.emulator.add_member(guide["userid"], guide["name"])
    token = await create_token(world.services.db, Role.HQ_ADMIN, name="test hq")
    return LbsWorld(world.client, world.services, world.emulator, world.driver, world.settings, bearer(token))
