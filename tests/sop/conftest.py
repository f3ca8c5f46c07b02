"""SOP tests: conftest's `world` (service ↔ emulator over HTTP) with two stores, four guides, the
SOP10 coupon template, tokens, the issue's onboarding document, and a controlled clock: ticks run
with `run_tick(services, at)`; the per-minute tick job is off."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select, update

from bot.api.auth import Role, create_token
from bot.customers.models import Customer
from sop.engine.clock import at_local, corp_zone, local_day
from sop.engine.config import SopConfig
from sop.engine.models import SopItem, SopRun
from sop.engine.tick import run_tick
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
]
SOP10 = {"code": "SOP10", "name": "新人回访券", "kind": "cash", "value_fen": 1000, "valid_days": 7}
ONBOARDING = {
    "code": "onboarding", "name": "新好友7天培育",
    "trigger": {"event": "friend_added"},
    "audience": {"channels": ["pkg"]},
    "exit_on": ["purchased", "unfriended"],
    "window": {"from": "09:00", "to": "21:00"},
    "steps": [
        {"key": "d1", "after": {"days": 1}, "at": "10:00", "reach": "group_send",
         "content": {"text": "我是{store_name}的{guide_name}，有任何穿搭问题随时找我～"},
         "sku": [{"code": "DRESS-01", "name": "真丝连衣裙", "price_fen": 52000, "url": "https://shop.example/DRESS-01"}]},
        {"key": "d3", "after": {"days": 3}, "at": "19:30", "when": {"has_unused_coupon": True},
         "reach": "guide_push", "content": {"text": "您的新人券还有4天到期，到店出示即可使用"}},
        {"key": "d6", "after": {"days": 6}, "at": "19:30", "reach": "guide_task",
         "content": {"text": "{customer_name}您好，新人券明天到期啦"}, "benefit": {"coupon_template_code": "SOP10"}}]}
ZONE = corp_zone()


def onboarding(**changes) -> dict:
    document = copy.deepcopy(ONBOARDING)
    document.update(changes)
    return document


def local(days: int, clock: str, since: dt.datetime | None = None) -> dt.datetime:
    """`clock` local time, `days` after the local day of `since` (default: now)."""
    since = since or dt.datetime.now(dt.UTC)
    return at_local(local_day(since, ZONE) + dt.timedelta(days=days), clock, ZONE)


@dataclass
class SopWorld:
    world: object
    tokens: dict = field(default_factory=dict)

    @property
    def emulator(self):
        return self.world.emulator

    @property
    def services(self):
        return self.world.services

    async def api(self, method: str, path: str, expect: int | None = None, *, as_: str = "hq", **kw):
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"}
        response = await self.world.client.request(method, path, headers=headers, **kw)
        data = await response.json()
        if expect is not None:
            assert response.status == expect, (response.status, data)
        return data

    async def bind(self, external_userid: str, guide: str, *, channel: str | None = "pkg") -> None:
        """The customer adds the guide (a real callback): bound, a member with the welcome coupon."""
        result = await self.world.driver.customer_adds_guide(external_userid, guide, name=f"客户{external_userid}")
        assert result["http_status"] == 200
        await self.settle()
        if channel:
            async with self.services.db.session() as session, session.begin():
                await session.execute(update(Customer).where(Customer.external_userid == external_userid)
                                      .values(channel_code=channel))

    async def settle(self) -> None:
        await self.world.settle(timeout=30)

    async def tick(self, at: dt.datetime):
        report = await run_tick(self.services, at)
        await self.settle()
        return report

    async def order(self, order_no: str, external_userid: str, paid_at: dt.datetime, amount_fen: int = 9900):
        return await self.api("POST", "/api/v1/orders", 201, as_="till", json={
            "order_no": order_no, "external_userid": external_userid, "channel": "online", "amount_fen": amount_fen,
            "paid_at": paid_at.isoformat()})

    def group_sends(self) -> list:
        return list(self.emulator.group_sends.values())

    def app_texts(self, userid: str) -> list[str]:
        return [m["text"]["content"] for m in self.emulator.outbox
                if m["channel"] == "app" and m["to"] == userid and m.get("msgtype") == "text"]

    async def runs(self, code: str = "onboarding") -> dict:
        async with self.services.db.session() as session:
            rows = (await session.scalars(select(SopRun).where(SopRun.code == code).order_by(SopRun.id))).all()
        return {(run.external_userid, run.step_key): (run.status, run.reason) for run in rows}

    async def items(self, code: str = "onboarding") -> list[SopItem]:
        async with self.services.db.session() as session:
            return list((await session.scalars(select(SopItem).where(SopItem.code == code).order_by(SopItem.id))).all())


@pytest.fixture
def sop_settings() -> list:
    """Default outreach rules; the per-minute tick job off (the tests tick with `run_tick`)."""
    return [OutreachConfig(_env_file=None), SopConfig(_env_file=None, tick_enabled=False)]


@pytest.fixture
def feature_configs(sop_settings) -> list:
    return sop_settings  # `world`'s service runs by these


@pytest.fixture
async def sw(world, sop_settings) -> SopWorld:
    db = world.services.db
    sw = SopWorld(world)
    sw.tokens = {
        "hq": await create_token(db, Role.HQ_ADMIN, name="hq"),
        "sh_manager": await create_token(db, Role.STORE_MANAGER, store_codes=["SH01"], name="sh"),
        "till": await create_token(db, Role.INTEGRATION, name="till"),
    }
    for store in STORES:
        await sw.api("POST", "/api/v1/stores", 201, json=store)
    for guide in GUIDES:
        world.emulator.add_member(guide["userid"], guide["name"])
        await sw.api("POST", "/api/v1/guides", 201, json=guide)
    await sw.api("POST", "/api/v1/coupon-templates", 201, json=SOP10)
    return sw
