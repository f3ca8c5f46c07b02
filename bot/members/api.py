"""Admin API routes of this feature (registered on bot.api.spec.api at import): members, their
ledger and coupons, points adjustments, merges. Coupons and orders: api_coupons.py, api_orders.py."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.fields import MAX_BIGINT, NON_BLANK
from bot.api.spec import ApiCall, api
from bot.members import ledger
from bot.members.api_schemas import (
    PHONE,
    AdjustmentIn,
    CouponOut,
    CouponPage,
    EntryOut,
    LedgerPage,
    MemberOut,
    member_in_scope,
    member_out,
    scoped_member,
)
from bot.members.config import MembersConfig
from bot.members.members import create_member, find_member, merge_members
from bot.members.models import Coupon, CouponTemplate, Member, MemberAudit, PointsEntry

READERS = [Role.HQ_ADMIN, Role.STORE_MANAGER, Role.GUIDE, Role.INTEGRATION]
STAFF = [Role.HQ_ADMIN, Role.STORE_MANAGER, Role.GUIDE]  # a till needs the balance, not the history


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("external_userid", "unionid", "phone")]})
    external_userid: str | None = Field(None, min_length=1, max_length=64, pattern=NON_BLANK)
    unionid: str | None = Field(None, min_length=1, max_length=64, pattern=NON_BLANK)
    phone: str | None = Field(None, pattern=PHONE)
    name: str = Field("", max_length=100)
    level: str = Field("normal", min_length=1, max_length=20, pattern=NON_BLANK)
    birthday: dt.date | None = None
    referrer_member_no: str | None = Field(None, max_length=20)

    @model_validator(mode="after")
    def _one_identity(self):
        if not (self.external_userid or self.unionid or self.phone):
            raise ValueError("give at least one of external_userid, unionid, phone")
        return self


class MemberCreated(MemberOut):
    created: bool


@api.route("POST", "/api/v1/members", summary="Create a member (or return the one with these identities)",
           roles=[Role.INTEGRATION, Role.HQ_ADMIN], body=MemberIn, response=MemberCreated, status=201)
async def create_member_route(call: ApiCall) -> MemberCreated:
    body: MemberIn = call.body
    config = call.services.config(MembersConfig)
    async with call.services.db.session() as session, session.begin():
        member, created = await create_member(session, config, source="integration", **body.model_dump())
        out = await member_out(session, config, member)
    return MemberCreated(**out.model_dump(), created=created)


class MemberLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_no: str | None = None
    external_userid: str | None = None
    unionid: str | None = None
    phone: str | None = None


class MemberPage(BaseModel):
    members: list[MemberOut]


@api.route("GET", "/api/v1/members", summary="Find a member by number, external_userid, unionid or phone",
           roles=READERS, query=MemberLookup, response=MemberPage)
async def lookup_members(call: ApiCall) -> MemberPage:
    q: MemberLookup = call.query
    if not any(q.model_dump().values()):  # a rule between fields, which the schema cannot state
        raise ApiError(422, "invalid_request", "give member_no, external_userid, unionid or phone")
    async with call.services.db.session() as session:
        member = await find_member(session, **q.model_dump())
        if member is None or not await member_in_scope(call, session, member):
            # Someone else's customer answers exactly as an unknown one: no number, no oracle.
            return MemberPage(members=[])
        return MemberPage(members=[await member_out(session, call.services.config(MembersConfig), member)])


@api.route("GET", "/api/v1/members/{member_no}", summary="A member with balance and stage", roles=READERS,
           response=MemberOut)
async def get_member_route(call: ApiCall) -> MemberOut:
    async with call.services.db.session() as session:
        member = await scoped_member(call, session, call.path["member_no"])
        return await member_out(session, call.services.config(MembersConfig), member)


class LedgerQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=500)
    before_id: int | None = Field(None, ge=1, le=MAX_BIGINT)


@api.route("GET", "/api/v1/members/{member_no}/ledger", summary="Points entries, newest first (with merged records)",
           roles=STAFF, query=LedgerQuery, response=LedgerPage)
async def member_ledger(call: ApiCall) -> LedgerPage:
    q: LedgerQuery = call.query
    async with call.services.db.session() as session:
        member = await scoped_member(call, session, call.path["member_no"])
        ids = [member.id, *(await session.scalars(select(Member.id).where(Member.merged_into_id == member.id)))]
        statement = select(PointsEntry).where(PointsEntry.member_id.in_(ids)).order_by(PointsEntry.id.desc()).limit(q.limit)
        if q.before_id:
            statement = statement.where(PointsEntry.id < q.before_id)
        entries = (await session.scalars(statement)).all()
    return LedgerPage(balance=member.points_balance, entries=[EntryOut.model_validate(e) for e in entries])


class CouponQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(issued|redeemed|expired|void)$")


@api.route("GET", "/api/v1/members/{member_no}/coupons", summary="A member's coupons", roles=READERS,
           query=CouponQuery, response=CouponPage)
async def member_coupons(call: ApiCall) -> CouponPage:
    async with call.services.db.session() as session:
        member = await scoped_member(call, session, call.path["member_no"])
        statement = (select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.code == Coupon.template_code)
                     .where(Coupon.member_id == member.id).order_by(Coupon.id.desc()))
        if call.query.status:
            statement = statement.where(Coupon.status == call.query.status)
        rows = (await session.execute(statement)).tuples().all()
    return CouponPage(coupons=[CouponOut.of(coupon, template) for coupon, template in rows])


class AdjustmentOut(BaseModel):
    entry: EntryOut
    balance: int


@api.route("POST", "/api/v1/members/{member_no}/points/adjustments", summary="HQ points adjustment (audited)",
           roles=[Role.HQ_ADMIN], body=AdjustmentIn, response=AdjustmentOut, status=201)
async def adjust_points(call: ApiCall) -> AdjustmentOut:
    body: AdjustmentIn = call.body
    actor = f"token:{call.principal.token_id}"
    key = f"adjust:{body.idempotency_key}"
    valid_days = call.services.config(MembersConfig).points_valid_days
    async with call.services.db.session() as session, session.begin():
        member = await ledger.lock_member(session, (await scoped_member(call, session, call.path["member_no"])).id)
        replay = await session.scalar(select(PointsEntry.id).where(PointsEntry.idempotency_key == key))
        if body.points > 0:
            entry = await ledger.credit(session, member, body.points, kind="adjust", key=key, reason=body.reason,
                                        actor=actor, valid_days=valid_days)
        else:
            entry = await ledger.debit(session, member, -body.points, kind="adjust", key=key, reason=body.reason,
                                       actor=actor)
        await session.flush()
        if replay is None:  # a retried request is answered, not audited twice
            session.add(MemberAudit(member_id=member.id, action="points_adjust", actor=actor,
                                    details={"points": body.points, "reason": body.reason, "entry_id": entry.id}))
    return AdjustmentOut(entry=EntryOut.model_validate(entry), balance=member.points_balance)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_member_no: str = Field(min_length=1, max_length=20)
    merge_member_no: str = Field(min_length=1, max_length=20)


@api.route("POST", "/api/v1/members/merge", summary="Merge two records of one person (history kept)",
           roles=[Role.HQ_ADMIN], body=MergeIn, response=MemberOut)
async def merge_route(call: ApiCall) -> MemberOut:
    body: MergeIn = call.body
    async with call.services.db.session() as session, session.begin():
        member = await merge_members(session, keep_no=body.keep_member_no, merge_no=body.merge_member_no,
                                     actor=f"token:{call.principal.token_id}")
        return await member_out(session, call.services.config(MembersConfig), member)


