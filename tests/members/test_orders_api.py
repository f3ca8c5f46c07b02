"""POST /api/v1/orders and refunds: idempotent on order_no, all effects in one transaction, reversible."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.customers.models import Customer
from bot.members import ledger
from bot.members.models import Coupon, Member, Order, PointsEntry
from bot.services import SERVICES
from bot.storage import utcnow
from tests.members.conftest import add_template, new_member, tokens

PAID_AT = (utcnow() - dt.timedelta(days=1)).isoformat()  # recent: a 2-year-old order is "dormant"


@pytest.fixture
async def api(aiohttp_client, settings, members_cfg):
    client = await aiohttp_client(create_app(settings, run_jobs=False, configs=[members_cfg]))
    client.db = client.app[SERVICES].db
    client.auth = await tokens(client.db)
    return client


def order(order_no: str = "POS-1", **fields) -> dict:
    return {"order_no": order_no, "external_userid": "wm-buyer", "store_code": "S1", "channel": "store",
            "amount_fen": 12850, "items": [{"sku": "A1", "name": "T恤", "qty": 1, "price_fen": 12850}],
            "paid_at": PAID_AT, **fields}


async def post_order(api, body: dict, role: str = "integration"):
    response = await api.post("/api/v1/orders", json=body, headers=api.auth[role])
    return response.status, await response.json()


async def test_an_order_earns_points_counts_the_purchase_and_attributes_the_guide(api):
    async with api.db.session() as session, session.begin():
        session.add(Customer(external_userid="wm-buyer", name="买家", guide_userid="g1", store_code="S1", tags=[]))
    status, body = await post_order(api, order())
    assert status == 201
    assert body["points_earned"] == 128 and body["points_balance"] == 128 and body["purchase_count"] == 1
    assert body["guide_userid"] == "g1" and body["attribution"] == "customer" and body["stage"] == "first_purchase"
    status, again = await post_order(api, order())
    assert status == 200 and again == body  # a replay changes nothing
    async with api.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PointsEntry)) == 1


async def test_the_same_order_no_with_other_content_is_refused(api):
    assert (await post_order(api, order()))[0] == 201
    status, body = await post_order(api, order(amount_fen=99))
    assert status == 409 and body["error"]["code"] == "duplicate_order"
    async with api.db.session() as session:
        assert (await session.scalar(select(Member))).points_balance == 128


@pytest.mark.parametrize("field, value", [("amount_fen", -1), ("amount_fen", "12.5"), ("amount_fen", 12.5),
                                          ("amount_fen", "abc"), ("channel", "tv"), ("paid_at", "2024-05-01 12:00"),
                                          ("phone", "12345")])
async def test_bad_amounts_and_fields_are_400_with_details_and_nothing_changes(api, field, value):
    status, body = await post_order(api, order(**{field: value}))
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert any(field in detail["field"] for detail in body["error"]["details"])
    async with api.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(func.count()).select_from(Member)) == 0


async def test_roles_other_than_integration_and_hq_cannot_post_orders(api):
    assert (await post_order(api, order(), role="guide"))[0] == 403
    assert (await post_order(api, order(), role="manager"))[0] == 403


async def test_coupons_used_on_an_order_are_redeemed_and_a_refund_reverses_everything(api, members_cfg):
    await add_template(api.db, "CASH20", min_spend_fen=10000)
    member = await new_member(api.db, members_cfg, external_userid="wm-buyer")
    issued = await api.post("/api/v1/coupons/issue", headers=api.auth["hq"],
                            json={"template_code": "CASH20", "member_nos": [member.member_no], "idempotency_key": "k1"})
    code = (await issued.json())["coupons"][0]["code"]
    status, body = await post_order(api, order(coupon_codes=[code], guide_userid="g9"))
    assert status == 201 and body["attribution"] == "order" and body["guide_userid"] == "g9"
    async with api.db.session() as session:
        assert (await session.scalar(select(Coupon))).status == "redeemed"

    refund = await api.post("/api/v1/orders/POS-1/refund", headers=api.auth["integration"])
    refunded = await refund.json()
    assert refund.status == 200 and refunded["status"] == "refunded"
    assert refunded["points_balance"] == 0 and refunded["purchase_count"] == 0 and refunded["stage"] == "member"
    again = await api.post("/api/v1/orders/POS-1/refund", headers=api.auth["integration"], json={"reason": "dup"})
    assert again.status == 200 and (await again.json())["points_balance"] == 0
    async with api.db.session() as session:
        coupon = await session.scalar(select(Coupon))
        kinds = [e.kind for e in (await session.scalars(select(PointsEntry).order_by(PointsEntry.id))).all()]
    assert coupon.status == "issued" and coupon.order_no is None and kinds == ["earn", "reverse"]


async def test_a_refund_after_the_points_were_spent_takes_back_only_what_is_left(api):
    await post_order(api, order())
    async with api.db.session() as session, session.begin():
        member = await ledger.lock_member(session, (await session.scalar(select(Member))).id)
        await ledger.debit(session, member, 100, kind="redeem", key="spent")
    refund = await (await api.post("/api/v1/orders/POS-1/refund", headers=api.auth["hq"])).json()
    assert refund["points_balance"] == 0


async def test_a_foreign_or_expired_coupon_fails_the_whole_order(api, members_cfg):
    await add_template(api.db, "CASH20")
    other = await new_member(api.db, members_cfg, external_userid="wm-other")
    issued = await api.post("/api/v1/coupons/issue", headers=api.auth["hq"],
                            json={"template_code": "CASH20", "member_nos": [other.member_no], "idempotency_key": "k"})
    foreign = (await issued.json())["coupons"][0]["code"]
    status, body = await post_order(api, order(coupon_codes=[foreign]))
    assert status == 409 and body["error"]["code"] == "coupon_not_owned"
    async with api.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert (await session.scalar(select(Coupon))).status == "issued"


async def test_refunding_an_unknown_order_is_404(api):
    response = await api.post("/api/v1/orders/NOPE/refund", headers=api.auth["integration"])
    assert response.status == 404 and (await response.json())["error"]["code"] == "order_not_found"
