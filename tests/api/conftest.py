"""The admin API with one row of everything, and a bearer header per role.

Stores S1 and S2 (guides g1 and g2), channel CH1, a QR code, coupon template T1, and member Mine
(customer wmMine of g1 at S1) and Theirs (customer wmTheirs of g2 at S2, phone 13900000002).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.api.auth import Role, create_token
from bot.customers.models import Customer
from bot.members.config import MembersConfig
from bot.members.members import create_member


@dataclass
class Seeded:
    world: object
    auth: dict[str, dict[str, str]]
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def client(self):
        return self.world.client


async def _ok(response, status: int) -> dict:
    assert response.status == status, await response.text()
    return await response.json()


@pytest.fixture
def feature_configs() -> list:
    return [MembersConfig(_env_file=None, join_bonus_points=0)]  # `world`'s service: no join bonus


@pytest.fixture
async def seeded(world) -> Seeded:
    config = world.services.config(MembersConfig)
    db = world.services.db
    made = {
        "hq": await create_token(db, Role.HQ_ADMIN),
        "integration": await create_token(db, Role.INTEGRATION),
        "manager": await create_token(db, Role.STORE_MANAGER, store_codes=["S1"]),
        "guide": await create_token(db, Role.GUIDE, guide_userid="g1"),
    }
    seed = Seeded(world, {role: {"Authorization": f"Bearer {token}"} for role, token in made.items()})
    client, hq = world.client, seed.auth["hq"]
    for code in ("S1", "S2"):
        await _ok(await client.post("/api/v1/stores", headers=hq, json={
            "code": code, "name": f"门店{code}", "city": "上海", "lat": 31.23, "lng": 121.47}), 201)
    for userid, store in (("g1", "S1"), ("g2", "S2")):
        world.emulator.add_member(userid, f"导购{userid}")
        await _ok(await client.post("/api/v1/guides", headers=hq, json={
            "userid": userid, "name": f"导购{userid}", "store_code": store}), 201)
    await _ok(await client.post("/api/v1/channels", headers=hq, json={"code": "CH1", "name": "海报"}), 201)
    qrcode = await _ok(await client.post("/api/v1/qrcodes", headers=hq, json={
        "channel_code": "CH1", "fallback": {"store_code": "S1"}}), 201)
    await _ok(await client.post("/api/v1/coupon-templates", headers=hq, json={
        "code": "T1", "name": "满减", "kind": "cash", "value_fen": 1000, "valid_days": 30}), 201)
    async with db.session() as session, session.begin():
        for external_userid, guide, store in (("wmMine", "g1", "S1"), ("wmTheirs", "g2", "S2")):
            session.add(Customer(external_userid=external_userid, name="顾客", guide_userid=guide,
                                 store_code=store, channel_code="CH1", status="bound", tags=[]))
        mine, _ = await create_member(session, config, source="admin", external_userid="wmMine",
                                      phone="13900000001")
        theirs, _ = await create_member(session, config, source="admin", external_userid="wmTheirs",
                                        phone="13900000002")
    issued = await _ok(await client.post("/api/v1/coupons/issue", headers=hq, json={
        "template_code": "T1", "member_nos": [mine.member_no], "idempotency_key": "seed"}), 201)
    await _ok(await client.post("/api/v1/orders", headers=seed.auth["integration"], json={
        "order_no": "O1", "member_no": mine.member_no, "channel": "store", "store_code": "S1",
        "amount_fen": 12800, "paid_at": "2026-11-01T10:00:00+08:00"}), 201)
    campaign = await _ok(await client.post("/api/v1/campaigns", headers=hq, json={
        "name": "关怀", "audience": {"stores": ["S1"]}, "content": {"text": "您好，我是{guide_name}"},
        "benefit": {"coupon_template_code": "T1"}}), 201)
    seed.ids = {"code": "S1", "userid": "g1", "qrcode": qrcode["code"], "channel": "CH1",
                "member_no": mine.member_no, "theirs": theirs.member_no, "external_userid": "wmMine",
                "coupon": issued["coupons"][0]["code"], "order_no": "O1", "job_id": "1",
                "campaign_id": str(campaign["id"]), "kind": "stores"}
    return seed
