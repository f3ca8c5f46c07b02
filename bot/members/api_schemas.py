"""Shapes shared by the members, coupons and orders routes, and the role scoping of a member."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.fields import NON_BLANK, WholeNumber
from bot.api.spec import ApiCall
from bot.customers.models import Customer
from bot.members import coupons, ledger, lifecycle
from bot.members.config import MembersConfig
from bot.members.members import get_member
from bot.members.models import Coupon, CouponTemplate, Member
from bot.storage import utcnow

PHONE = r"^1[3-9]\d{9}$"


class MemberOut(BaseModel):
    member_no: str
    external_userid: str | None
    unionid: str | None
    phone: str | None
    name: str
    level: str
    birthday: dt.date | None
    status: str
    points_balance: int
    points_expiring_soon: int
    points_expiring_first_at: dt.datetime | None
    purchase_count: int
    total_spent_fen: int
    last_purchase_at: dt.datetime | None
    stage: str
    joined_at: dt.datetime


async def member_out(session: AsyncSession, config: MembersConfig, member: Member) -> MemberOut:
    soon, first = await ledger.expiring_soon(session, member.id, config.expiring_soon_days)
    return MemberOut(
        member_no=member.member_no, external_userid=member.external_userid, unionid=member.unionid,
        phone=member.phone, name=member.name, level=member.level, birthday=member.birthday,
        status=member.status, points_balance=member.points_balance, points_expiring_soon=soon,
        points_expiring_first_at=first, purchase_count=member.purchase_count,
        total_spent_fen=member.total_spent_fen, last_purchase_at=member.last_purchase_at,
        stage=lifecycle.stage_of(member, config), joined_at=member.joined_at,
    )


async def scoped_member(call: ApiCall, session: AsyncSession, member_no: str) -> Member:
    """The member, if the caller may see it: store managers their stores' customers, guides their own."""
    member = await get_member(session, member_no)
    if not await member_in_scope(call, session, member):
        # Same answer as a missing member: a scoped caller learns nothing about others' customers.
        raise ApiError(404, "member_not_found", f"no member {member_no}")
    return member


async def member_in_scope(call: ApiCall, session: AsyncSession, member: Member) -> bool:
    principal = call.principal
    if principal.role in (Role.HQ_ADMIN, Role.INTEGRATION):
        return True
    customer = member.external_userid and await session.scalar(
        select(Customer).where(Customer.external_userid == member.external_userid))
    return bool(customer) and (
        principal.can_see_store(customer.store_code) if principal.role == Role.STORE_MANAGER
        else customer.guide_userid == principal.guide_userid
    )


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    points: int
    balance_after: int
    reason: str
    ref: str | None
    actor: str
    expires_at: dt.datetime | None
    created_at: dt.datetime


class LedgerPage(BaseModel):
    balance: int
    entries: list[EntryOut]


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    points: WholeNumber = Field(ge=-10_000_000, le=10_000_000, json_schema_extra={"not": {"const": 0}},
                                description="positive adds, negative takes away; never 0")
    reason: str = Field(min_length=1, max_length=200, pattern=NON_BLANK)
    idempotency_key: str = Field(min_length=1, max_length=100, pattern=NON_BLANK)

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0 or abs(value) > 10_000_000:
            raise ValueError("must be a non-zero whole number of points within ±10,000,000")
        return value


class CouponOut(BaseModel):
    code: str
    template_code: str
    name: str
    benefit: str
    source: str
    status: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    issued_at: dt.datetime
    redeemed_at: dt.datetime | None
    order_no: str | None
    void_reason: str | None

    @classmethod
    def of(cls, coupon: Coupon, template: CouponTemplate) -> CouponOut:
        # Past its date but not yet swept by the expiry job: already expired for every reader.
        lapsed = coupon.status == "issued" and coupon.valid_until <= utcnow()
        return cls(code=coupon.code, template_code=coupon.template_code, name=template.name,
                   benefit=coupons.describe(template), source=coupon.source,
                   status="expired" if lapsed else coupon.status,
                   valid_from=coupon.valid_from, valid_until=coupon.valid_until, issued_at=coupon.issued_at,
                   redeemed_at=coupon.redeemed_at, order_no=coupon.order_no, void_reason=coupon.void_reason)


class CouponPage(BaseModel):
    coupons: list[CouponOut]
