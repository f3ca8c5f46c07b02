"""Orders from the tills and the online mall: all effects in the caller's one transaction.

Recording an order earns points, redeems the coupons it used, updates purchase count, last purchase
and lifecycle stage, and records which guide it is attributed to. A refund reverses all of it.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import Customer
from bot.members import coupons, ledger, lifecycle
from bot.members.config import MembersConfig
from bot.members.errors import MemberError
from bot.members.members import create_member, find_member
from bot.members.models import Member, Order, PointsEntry
from bot.storage import utcnow


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def points_for(amount_fen: int, config: MembersConfig) -> int:
    """Whole points per whole yuan paid (rounded down)."""
    return amount_fen // 100 * config.points_per_yuan


async def _customer_member(session, config: MembersConfig, body: dict) -> Member | None:
    if body.get("member_no"):
        member = await find_member(session, member_no=body["member_no"])
        if member is None:
            raise MemberError(404, "member_not_found", f"no member {body['member_no']}")
        return member
    identities = {name: body.get(name) for name in ("external_userid", "unionid", "phone")}
    if not any(identities.values()):
        return None
    # A customer known by an identity who buys becomes a member.
    member, _ = await create_member(session, config, source="order", **identities)
    return member


async def _attributed_guide(session, body: dict, member: Member | None) -> tuple[str | None, str]:
    if body.get("guide_userid"):
        return body["guide_userid"], "order"
    external_userid = body.get("external_userid") or (member and member.external_userid)
    if external_userid:
        guide = await session.scalar(select(Customer.guide_userid).where(Customer.external_userid == external_userid))
        if guide:
            return guide, "customer"
    return None, "none"


async def record_order(session: AsyncSession, config: MembersConfig, body: dict) -> tuple[Order, bool]:
    """Record an order once; the same order_no with the same body returns it (False), another body is 409."""
    digest = request_hash(body)
    existing = await session.scalar(select(Order).where(Order.order_no == body["order_no"]))
    if existing is not None:
        if existing.request_hash != digest:
            raise MemberError(409, "duplicate_order", f"order {body['order_no']} was already recorded with other content")
        return existing, False
    member = await _customer_member(session, config, body)
    if body.get("coupon_codes") and member is None:
        raise MemberError(400, "invalid_request", "coupons can only be used on an order of a known member")
    if member is not None:
        member = await ledger.lock_member(session, member.id)
    guide, attribution = await _attributed_guide(session, body, member)
    order = Order(order_no=body["order_no"], request_hash=digest, member_id=member and member.id,
                  external_userid=body.get("external_userid") or (member and member.external_userid),
                  store_code=body.get("store_code"), guide_userid=guide, attribution=attribution,
                  channel=body["channel"], amount_fen=body["amount_fen"], items=body.get("items") or [],
                  coupon_codes=body.get("coupon_codes") or [], paid_at=body["paid_at"], status="paid")
    try:
        async with session.begin_nested():
            session.add(order)
            await session.flush()
    except IntegrityError:
        # A concurrent request recorded it first (PostgreSQL waited for its commit): the same content
        # is a replay like any other, other content is a conflict.
        existing = await session.scalar(select(Order).where(Order.order_no == body["order_no"]))
        if existing is None or existing.request_hash != digest:
            raise MemberError(409, "duplicate_order",
                              f"order {body['order_no']} was already recorded with other content") from None
        return existing, False
    if member is None:
        return order, True
    now = utcnow()
    for code in order.coupon_codes:
        await coupons.redeem_coupon(session, code, key=f"order:{order.order_no}:{code}", member_id=member.id,
                                    order_no=order.order_no, store_code=order.store_code,
                                    spend_fen=order.amount_fen, now=now)
    earned = points_for(order.amount_fen, config)
    if earned:
        await ledger.credit(session, member, earned, kind="earn", key=f"order:{order.order_no}:earn",
                            valid_days=config.points_valid_days, reason="消费积分", ref=f"order:{order.order_no}",
                            now=now)
    order.points_earned = earned
    member.purchase_count += 1
    member.total_spent_fen += order.amount_fen
    member.first_purchase_at = min(filter(None, [member.first_purchase_at, order.paid_at]))
    member.last_purchase_at = max(filter(None, [member.last_purchase_at, order.paid_at]))
    lifecycle.refresh_stage(member, config, now)
    return order, True


async def refund_order(session: AsyncSession, config: MembersConfig, order_no: str, reason: str = "") -> Order:
    """Reverse an order's effects; refunding twice is a no-op that returns the refunded order."""
    order = await session.scalar(select(Order).where(Order.order_no == order_no).with_for_update()
                                 .execution_options(populate_existing=True))
    if order is None:
        raise MemberError(404, "order_not_found", f"no order {order_no}")
    if order.status == "refunded":
        return order
    now = utcnow()
    order.status, order.refunded_at = "refunded", now
    if order.member_id is None:
        return order
    member = await ledger.lock_member(session, order.member_id)
    if order.points_earned:
        earn = await session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == f"order:{order_no}:earn"))
        # Points already spent cannot be taken back below zero: take what is left.
        await ledger.debit(session, member, order.points_earned, kind="reverse", key=f"order:{order_no}:reverse",
                           reason=reason or "退款冲回", ref=f"order:{order_no}", now=now, up_to_balance=True,
                           prefer_entry_id=earn and earn.id)
    for code in order.coupon_codes:
        await coupons.restore_coupon(session, code, now)
    await session.flush()
    member.purchase_count = max(0, member.purchase_count - 1)
    member.total_spent_fen = max(0, member.total_spent_fen - order.amount_fen)
    member.last_purchase_at, member.first_purchase_at = (await session.execute(
        select(func.max(Order.paid_at), func.min(Order.paid_at)).where(Order.member_id == member.id,
                                                                       Order.status == "paid"))).one()
    lifecycle.refresh_stage(member, config, now)
    return order

