"""The landing page's world: conftest's `world` (service ↔ emulator) with stores, guides, a channel
and a code seeded through the admin API, and helpers to scan, locate and choose as a customer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.api.auth import Role, create_token
from bot.stores.models import FunnelEvent

# A customer ~300 m from People's Square, Shanghai (GCJ-02), and a point far from every store.
CUSTOMER_GCJ = (31.2330, 121.4750)
FAR_AWAY = (23.1291, 113.2644)  # Guangzhou

STORES = [
    {"code": "SH001", "name": "上海人民广场店", "city": "上海", "address": "南京东路1号",
     "lat": 31.2304, "lng": 121.4737, "coord_system": "gcj02"},
    {"code": "SH002", "name": "上海静安寺店", "city": "上海", "address": "南京西路1618号",
     "lat": 31.2236, "lng": 121.4452, "coord_system": "gcj02"},
    {"code": "BJ001", "name": "北京王府井店", "city": "北京", "address": "王府井大街1号",
     "lat": 39.9142, "lng": 116.4109, "coord_system": "gcj02"},
]
GUIDES = [
    {"userid": "ann", "name": "安娜", "store_code": "SH001"},
    {"userid": "bo", "name": "薄波", "store_code": "SH001"},
    {"userid": "cai", "name": "蔡晨", "store_code": "SH002"},
    {"userid": "dan", "name": "丹丹", "store_code": "BJ001"},
]


@dataclass
class Landing:
    client: object
    services: object
    emulator: object
    hq: dict

    async def api(self, method: str, path: str, expect: int, **kw) -> dict:
        response = await self.client.request(method, path, headers=self.hq, **kw)
        data = await response.json()
        assert response.status == expect, (response.status, data)
        return data

    async def seed(self, guides=GUIDES, stores=STORES, members=None, channel: dict | None = None,
                   **code_options) -> str:
        """Stores, guides (WeCom members unless `members` says which stay; the others left the corp
        after they were made guides, so WeCom refuses their contact ways), a channel and a code."""
        for guide in guides:  # a guide is created only for a member of the corp
            self.emulator.add_member(guide["userid"], guide["userid"])
        for store in stores:
            await self.api("POST", "/api/v1/stores", 201, json=store)
        for guide in guides:
            await self.api("POST", "/api/v1/guides", 201, json=guide)
        for guide in guides:
            if members is not None and guide["userid"] not in members:
                self.emulator.add_member(guide["userid"], guide["userid"], resigned=True)
        channel = channel or {"code": "poster", "name": "门店海报"}
        await self.api("POST", "/api/v1/channels", 201, json=channel)
        qrcode = await self.api("POST", "/api/v1/qrcodes", 201, json={"channel_code": channel["code"], **code_options})
        return qrcode["code"]

    async def post(self, code: str, step: str, body=None, **kw):
        response = await self.client.post(f"/qr/{code}/{step}", json=body, **kw) if body is not None else \
            await self.client.post(f"/qr/{code}/{step}", **kw)
        return response.status, await response.json()

    async def funnel(self) -> list[FunnelEvent]:
        async with self.services.db.session() as session:
            return list((await session.scalars(select(FunnelEvent).order_by(FunnelEvent.id))).all())


@pytest.fixture
async def landing(world) -> Landing:
    token = await create_token(world.services.db, Role.HQ_ADMIN, name="test hq")
    return Landing(world.client, world.services, world.emulator, {"Authorization": f"Bearer {token}"})
