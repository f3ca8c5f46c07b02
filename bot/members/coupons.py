"""Coupons: issued from templates (stock, per-member limit, validity), redeemed once, expired, voided."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.members import ledger
from bot.members.errors import MemberError
from bot.members.models import Coupon, CouponTemplate, Member
from bot.storage import utcnow

SOURCES = ("welcome", "sop", "campaign", "mall", "manual")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till


def describe(template: CouponTemplate) -> str:
    """「满199减20元」, 「满100享8.5折」, 「赠品：帆布袋」 — how a customer reads the benefit."""
    threshold = f"满{template.min_spend_fen / 100:g}" if template.min_spend_fen else "无门槛"
    if template.kind == "cash":
        return f"{threshold}减{template.value_fen / 100:g}元"
    if template.kind == "discount":
        return f"{threshold}享{(template.discount_percent or 100) / 10:g}折"
    return f"赠品：{template.gift_name or template.name}"


async def get_template(session: AsyncSession, code: str) -> CouponTemplate:
    template = await session.scalar(select(CouponTemplate).where(CouponTemplate.code == code))
    if template is None:
        raise MemberError(404, "template_not_found", f"no coupon template {code}")
    return template


def validity(template: CouponTemplate, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if template.valid_days:
        return now, now + dt.timedelta(days=template.valid_days)
    return template.valid_from or now, template.valid_until


async def issue_coupon(
    session: AsyncSession, member: Member, template_code: str, *, source: str, key: str,
    now: dt.datetime | None = None,
) -> Coupon:
    """Issue one coupon to a locked member; the same `key` returns the coupon issued the first time."""
    existing = await session.scalar(select(Coupon).where(Coupon.issue_key == key))
    if existing is not None:
        if existing.member_id != member.id or existing.template_code != template_code:
            raise MemberError(409, "idempotency_conflict", f"issue key {key!r} was used for another coupon")
        return existing
    now = now or utcnow()
    template = await get_template(session, template_code)
    start, until = validity(template, now)
    if not template.active or until <= now:
        raise MemberError(409, "template_inactive", f"coupon template {template_code} is not issuing")
    if template.per_member_limit is not None:
        held = await session.scalar(select(func.count()).select_from(Coupon).where(
            Coupon.member_id == member.id, Coupon.template_code == template_code, Coupon.status != "void"))
        if held >= template.per_member_limit:
            raise MemberError(409, "per_member_limit",
                              f"member already holds {held} of {template_code} (limit {template.per_member_limit})")
    # One conditional UPDATE: two issues racing for the last coupon cannot both win.
    taken = await session.execute(
        update(CouponTemplate).where(CouponTemplate.id == template.id,
                                     or_(CouponTemplate.stock.is_(None), CouponTemplate.issued_count < CouponTemplate.stock))
        .values(issued_count=CouponTemplate.issued_count + 1).returning(CouponTemplate.id)
    )
    if taken.scalar_one_or_none() is None:
        raise MemberError(409, "out_of_stock", f"coupon template {template_code} is out of stock")
    coupon = Coupon(code="".join(secrets.choice(CODE_ALPHABET) for _ in range(12)), template_code=template_code,
                    member_id=member.id, source=source, issue_key=key, status="issued", valid_from=start,
                    valid_until=until, issued_at=now)
    session.add(coupon)
    await session.flush()
    return coupon


async def _locked_coupon(session: AsyncSession, code: str) -> Coupon:
    coupon = await session.scalar(select(Coupon).where(Coupon.code == code).with_for_update()
                                  .execution_options(populate_existing=True))
    if coupon is None:
        raise MemberError(404, "coupon_not_found", f"no coupon {code}")
    return coupon


async def redeem_coupon(
    session: AsyncSession, code: str, *, key: str, member_id: int | None = None, order_no: str | None = None,
    store_code: str | None = None, spend_fen: int | None = None, now: dt.datetime | None = None,
) -> Coupon:
    """Use a coupon (a till, an order); replaying `key` returns it unchanged."""
    now = now or utcnow()
    coupon = await _locked_coupon(session, code)
    if coupon.status == "redeemed" and coupon.redeem_key == key:
        return coupon
    if member_id is not None and coupon.member_id != member_id:
        raise MemberError(409, "coupon_not_owned", f"coupon {code} belongs to another member")
    if coupon.status == "redeemed":
        raise MemberError(409, "coupon_already_redeemed", f"coupon {code} was already used")
    if coupon.status == "void":
        raise MemberError(409, "coupon_void", f"coupon {code} was voided")
    if coupon.status == "expired" or coupon.valid_until <= now:
        raise MemberError(409, "coupon_expired", f"coupon {code} expired on {coupon.valid_until:%Y-%m-%d}")
    if coupon.valid_from > now:
        raise MemberError(409, "coupon_not_yet_valid", f"coupon {code} is valid from {coupon.valid_from:%Y-%m-%d}")
    template = await get_template(session, coupon.template_code)
    if spend_fen is not None and spend_fen < template.min_spend_fen:
        raise MemberError(409, "below_min_spend",
                          f"coupon {code} needs a spend of {template.min_spend_fen} fen, got {spend_fen}")
    coupon.status, coupon.redeemed_at, coupon.redeem_key = "redeemed", now, key
    coupon.order_no, coupon.store_code = order_no, store_code
    return coupon


async def restore_coupon(session: AsyncSession, code: str, now: dt.datetime | None = None) -> Coupon:
    """Undo a redemption (a refund): usable again, or expired if its time has passed."""
    now = now or utcnow()
    coupon = await _locked_coupon(session, code)
    if coupon.status == "redeemed":
        coupon.status = "issued" if coupon.valid_until > now else "expired"
        coupon.redeemed_at = coupon.redeem_key = coupon.order_no = coupon.store_code = None
    return coupon


async def void_coupon(session: AsyncSession, code: str, reason: str) -> Coupon:
    coupon = await _locked_coupon(session, code)
    if coupon.status == "redeemed":
        raise MemberError(409, "coupon_already_redeemed", f"coupon {code} was used; refund the order instead")
    if coupon.status != "void":
        coupon.status, coupon.voided_at, coupon.void_reason = "void", utcnow(), reason[:200]
    return coupon


async def expire_coupons(session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Mark every issued coupon past its validity as expired (the housekeeping job)."""
    result = await session.execute(
        update(Coupon).where(Coupon.status == "issued", Coupon.valid_until <= (now or utcnow()))
        .values(status="expired").execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def usable_coupons(session: AsyncSession, member_id: int, now: dt.datetime | None = None):
    """(coupon, template) pairs the member can use now, soonest-expiring first."""
    now = now or utcnow()
    rows = await session.execute(
        select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.code == Coupon.template_code)
        .where(Coupon.member_id == member_id, Coupon.status == "issued", Coupon.valid_until > now)
        .order_by(Coupon.valid_until, Coupon.id)
    )
    return list(rows.tuples())


async def mall_templates(session: AsyncSession, now: dt.datetime | None = None) -> list[CouponTemplate]:
    """Templates on sale for points: active, priced, in stock, not past their window."""
    now = now or utcnow()
    rows = await session.scalars(
        select(CouponTemplate).where(
            CouponTemplate.active.is_(True), CouponTemplate.points_price.is_not(None),
            or_(CouponTemplate.stock.is_(None), CouponTemplate.issued_count < CouponTemplate.stock),
            or_(CouponTemplate.valid_until.is_(None), CouponTemplate.valid_until > now),
        ).order_by(CouponTemplate.points_price, CouponTemplate.code)
    )
    return list(rows)


async def buy_with_points(
    session: AsyncSession, member: Member, template_code: str, *, key: str, now: dt.datetime | None = None,
) -> Coupon:
    """Points mall: take the points and issue the coupon in one transaction (member already locked)."""
    now = now or utcnow()
    template = await get_template(session, template_code)
    if template.points_price is None:
        raise MemberError(409, "not_in_mall", f"coupon template {template_code} is not sold for points")
    await ledger.debit(session, member, template.points_price, kind="redeem", key=f"{key}:points",
                       reason=f"兑换 {template.name}", ref=f"template:{template_code}", now=now)
    return await issue_coupon(session, member, template_code, source="mall", key=key, now=now)


async def template_name(session: AsyncSession, code: str) -> str | None:
    """The coupon's name as customers see it (the landing page names a channel's benefit by it)."""
    return await session.scalar(select(CouponTemplate.name).where(CouponTemplate.code == code))
