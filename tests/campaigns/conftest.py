"""Campaign tests: conftest's `world` (service ↔ emulator over HTTP) with two stores, four guides,
a care coupon, tokens per role, and helpers to bind customers and call the API."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.api.auth import Role, create_token
from sop.outreach.config import OutreachConfig

STORES = [
    {"code": "SH01", "name": "上海一店", "city": "上海", "address": "南京东路1号", "lat": 31.2304, "lng": 121.4737,
     "coord_system": "gcj02"},
    {"code": "BJ01", "name": "北京一店", "city": "北京", "address": "王府井1号", "lat": 39.9142, "lng": 116.4109,
     "coord_system": "gcj02"},
]
GUIDES = [
    {"userid": "ann", "name": "安娜", "store_code": "SH01"},
    {"userid": "bo", "name": "薄波", "store_code": "SH01"},
    {"userid": "cai", "name": "蔡晨", "store_code": "BJ01"},
    {"userid": "dan", "name": "丹丹", "store_code": "BJ01"},
]
CARE = {"code": "CARE20", "name": "关怀券", "kind": "cash", "value_fen": 2000, "valid_days": 30}
CAMPAIGN = {"name": "闭店不停业关怀", "audience": {"stores": ["SH01"]},
            "content": {"text": "您好，我是{guide_name}。门店暂停营业期间，线上商城照常为您服务，送您一张20元关怀券。"},
            "benefit": {"coupon_template_code": "CARE20"}, "attribution_days": 7}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class CampaignWorld:
    world: object
    tokens: dict = field(default_factory=dict)

    @property
    def emulator(self):
        return self.world.emulator

    @property
    def services(self):
        return self.world.services

    async def api(self, method: str, path: str, expect: int | None = None, *, as_: str = "hq", **kw):
        response = await self.world.client.request(method, path, headers=bearer(self.tokens[as_]), **kw)
        data = await response.json()
        if expect is not None:
            assert response.status == expect, (response.status, data)
        return data

    async def bind(self, external_userid: str, guide: str, *, gender: int = 0) -> None:
        """The customer adds the guide (a real callback) and is bound, a member with a welcome coupon."""
        result = await self.world.driver.customer_adds_guide(external_userid, guide, name=f"客户{external_userid}",
                                                             gender=gender)
        assert result["http_status"] == 200

    async def settle(self) -> None:
        await self.world.settle(timeout=30)

    async def create(self, body: dict | None = None, *, as_: str = "hq", expect: int = 201) -> dict:
        return await self.api("POST", "/api/v1/campaigns", expect, as_=as_, json=body or CAMPAIGN)

    async def launch(self, body: dict | None = None) -> int:
        """Create, approve and launch; returns the id once every task exists."""
        campaign = await self.create(body)
        await self.api("POST", f"/api/v1/campaigns/{campaign['id']}/approve", 200, json={})
        await self.api("POST", f"/api/v1/campaigns/{campaign['id']}/launch", 200, json={})
        await self.settle()
        return campaign["id"]

    def tasks(self) -> list:
        return list(self.emulator.group_sends.values())


@pytest.fixture
def outreach_settings():
    return OutreachConfig(_env_file=None)


@pytest.fixture
def feature_configs(outreach_settings) -> list:
    return [outreach_settings]  # `world`'s service plans by these


@pytest.fixture
async def cw(world, outreach_settings) -> CampaignWorld:
    db = world.services.db
    cw = CampaignWorld(world)
    cw.tokens = {
        "hq": await create_token(db, Role.HQ_ADMIN, name="hq"),
        "sh_manager": await create_token(db, Role.STORE_MANAGER, store_codes=["SH01"], name="sh"),
        "guide": await create_token(db, Role.GUIDE, guide_userid="ann", name="ann"),
        "till": await create_token(db, Role.INTEGRATION, name="till"),
    }
    for store in STORES:
        await cw.api("POST", "/api/v1/stores", 201, json=store)
    for guide in GUIDES:
        world.emulator.add_member(guide["userid"], guide["name"])
        await cw.api("POST", "/api/v1/guides", 201, json=guide)
    await cw.api("POST", "/api/v1/coupon-templates", 201, json=CARE)
    return cw
