"""Coupons: templates, issuing (stock, per-member limit, idempotent), till redemption, expiry, void,
and the new-member coupon as the welcome benefit."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.members import coupons, ledger
from bot.members.errors import MemberError
from bot.members.models import Coupon, CouponTemplate, Member
from bot.members.welcome import grant_welcome_benefit
from bot.services import SERVICES
from bot.storage import utcnow
from tests.members.conftest import add_template, new_member, tokens


@pytest.fixture
async def api(aiohttp_client, settings, members_cfg):
    client = await aiohttp_client(create_app(settings, run_jobs=False, configs=[members_cfg]))
    client.db = client.app[SERVICES].db
    client.auth = await tokens(client.db)
    return client


async def issue(db, member_id: int, template: str, key: str) -> Coupon:
    async with db.session() as session, session.begin():
        member = await ledger.lock_member(session, member_id)
        return await coupons.issue_coupon(session, member, template, source="manual", key=key)


async def test_template_validation_and_creation(api):
    bad = await api.post("/api/v1/coupon-templates", headers=api.auth["hq"],
                         json={"code": "X", "name": "x", "kind": "cash", "value_fen": 0, "valid_days": 7})
    assert bad.status == 400 and "value_fen" in str((await bad.json())["error"]["details"])
    both = await api.post("/api/v1/coupon-templates", headers=api.auth["hq"],
                          json={"code": "X", "name": "x", "kind": "gift", "gift_name": "袋", "valid_days": 7,
                                "valid_until": "2030-01-01T00:00:00+08:00"})
    assert both.status == 400
    body = {"code": "D85", "name": "八五折", "kind": "discount", "discount_percent": 85, "min_spend_fen": 10000,
            "valid_days": 14, "points_price": 300, "stock": 10}
    created = await api.post("/api/v1/coupon-templates", headers=api.auth["hq"], json=body)
    assert created.status == 201 and (await created.json())["benefit"] == "满100享8.5折"
    assert (await api.post("/api/v1/coupon-templates", headers=api.auth["hq"], json=body)).status == 409
    assert (await api.post("/api/v1/coupon-templates", headers=api.auth["guide"], json=body)).status == 403
    listed = await (await api.get("/api/v1/coupon-templates", headers=api.auth["guide"])).json()
    assert [t["code"] for t in listed["templates"]] == ["D85"]


async def test_issuing_respects_stock_and_the_per_member_limit_and_is_idempotent(db, members_cfg):
    await add_template(db, "T", stock=2, per_member_limit=1)
    a, b, c = [await new_member(db, members_cfg, phone=f"1380000000{i}") for i in range(3)]
    first = await issue(db, a.id, "T", "k-a")
    assert (await issue(db, a.id, "T", "k-a")).code == first.code
    with pytest.raises(MemberError, match="limit"):
        await issue(db, a.id, "T", "k-a2")
    await issue(db, b.id, "T", "k-b")
    with pytest.raises(MemberError) as out:
        await issue(db, c.id, "T", "k-c")
    assert out.value.code == "out_of_stock"
    async with db.session() as session:
        assert (await session.scalar(select(CouponTemplate))).issued_count == 2


async def test_concurrent_issues_never_exceed_the_stock(db, members_cfg):
    await add_template(db, "LAST", stock=3)
    members = [await new_member(db, members_cfg, external_userid=f"wm-s{i}") for i in range(10)]

    async def attempt(member: Member) -> bool:
        try:
            await issue(db, member.id, "LAST", f"race-{member.id}")
            return True
        except MemberError:
            return False

    assert sum(await asyncio.gather(*(attempt(m) for m in members))) == 3
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Coupon)) == 3


async def test_till_redemption_is_idempotent_and_refuses_bad_coupons(api, members_cfg):
    await add_template(api.db, "CASH", min_spend_fen=5000)
    owner = await new_member(api.db, members_cfg, phone="13900000001")
    stranger = await new_member(api.db, members_cfg, phone="13900000002")
    code = (await issue(api.db, owner.id, "CASH", "k")).code

    async def redeem(key: str, **fields):
        response = await api.post(f"/api/v1/coupons/{code}/redeem", headers=api.auth["integration"],
                                  json={"idempotency_key": key, **fields})
        return response.status, await response.json()

    assert (await redeem("till-1", member_no=stranger.member_no))[1]["error"]["code"] == "coupon_not_owned"
    assert (await redeem("till-1", spend_fen=100))[1]["error"]["code"] == "below_min_spend"
    status, body = await redeem("till-1", spend_fen=6000, member_no=owner.member_no, store_code="S1")
    assert status == 200 and body["status"] == "redeemed"
    assert (await redeem("till-1", spend_fen=6000))[0] == 200
    status, body = await redeem("till-2")
    assert status == 409 and body["error"]["code"] == "coupon_already_redeemed"
    missing = await api.post("/api/v1/coupons/NOPE/redeem", headers=api.auth["integration"], json={"idempotency_key": "x"})
    assert missing.status == 404


async def test_expired_coupons_are_refused_and_swept_by_the_job(db, members_cfg):
    await add_template(db, "OLD", valid_days=1)
    member = await new_member(db, members_cfg, phone="13900000003")
    coupon = await issue(db, member.id, "OLD", "k")
    later = utcnow() + dt.timedelta(days=2)
    async with db.session() as session, session.begin():
        with pytest.raises(MemberError) as expired:
            await coupons.redeem_coupon(session, coupon.code, key="r", now=later)
        assert expired.value.code == "coupon_expired"
    async with db.session() as session, session.begin():
        assert await coupons.expire_coupons(session, later) == 1
    async with db.session() as session:
        assert (await session.scalar(select(Coupon))).status == "expired"


async def test_void_is_audited_and_a_void_coupon_cannot_be_used(api, members_cfg):
    await add_template(api.db, "V")
    member = await new_member(api.db, members_cfg, phone="13900000004")
    code = (await issue(api.db, member.id, "V", "k")).code
    voided = await api.post(f"/api/v1/coupons/{code}/void", headers=api.auth["hq"], json={"reason": "发错了"})
    assert voided.status == 200 and (await voided.json())["status"] == "void"
    used = await api.post(f"/api/v1/coupons/{code}/redeem", headers=api.auth["integration"], json={"idempotency_key": "z"})
    assert used.status == 409 and (await used.json())["error"]["code"] == "coupon_void"


async def test_the_welcome_benefit_is_membership_and_a_seven_day_coupon_once(db, members_cfg):
    async with db.session() as session, session.begin():
        benefit = await grant_welcome_benefit(session, external_userid="wm-new", template_code=None,
                                              config=members_cfg)
    async with db.session() as session, session.begin():
        again = await grant_welcome_benefit(session, external_userid="wm-new", template_code=None,
                                              config=members_cfg)
    assert benefit.coupon_code == again.coupon_code and "新人专享券" in benefit.text
    async with db.session() as session:
        coupon = await session.scalar(select(Coupon))
        member = await session.scalar(select(Member))
    assert member.source == "binding" and member.external_userid == "wm-new"
    assert coupon.source == "welcome" and (coupon.valid_until - coupon.valid_from) == dt.timedelta(days=7)


async def test_no_member_is_created_on_binding_when_switched_off(db, members_cfg):
    members_cfg.create_member_on_binding = False
    async with db.session() as session, session.begin():
        assert await grant_welcome_benefit(session, external_userid="wm-x", template_code=None,
                                           config=members_cfg) is None
