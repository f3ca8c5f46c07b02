"""Admin API: coupon templates, issuing, redeeming at a till, voiding."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.fields import MAX_FEN, MAX_INT, NON_BLANK, WholeNumber, whole
from bot.api.spec import ApiCall, api
from bot.members import coupons, ledger
from bot.members.api_schemas import CouponOut, scoped_member
from bot.members.errors import MemberError
from bot.members.members import get_member
from bot.members.models import Coupon, CouponTemplate, MemberAudit

Fen = WholeNumber  # money: whole fen (12800 or 12800.0), never a fraction


def _when_kind(kind: str, then: dict) -> dict:
    return {"if": {"properties": {"kind": {"const": kind}}}, "then": then}


# What _consistent checks, said in the OpenAPI document (all but valid_until after valid_from).
TEMPLATE_RULES = {
    "allOf": [
        _when_kind("cash", {"required": ["value_fen"], "properties": {"value_fen": {"minimum": 1}}}),
        _when_kind("discount", {"required": ["discount_percent"],
                                "properties": {"discount_percent": {"type": "integer"}}}),
        _when_kind("gift", {"required": ["gift_name"],
                            "properties": {"gift_name": {"type": "string", "pattern": NON_BLANK}}}),
    ],
    "oneOf": [
        {"required": ["valid_days"], "properties": {"valid_days": {"type": "integer"}}},
        {"required": ["valid_until"], "properties": {"valid_until": {"type": "string"}}},
    ],
}


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=TEMPLATE_RULES)
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=60, pattern=NON_BLANK)
    kind: Literal["cash", "discount", "gift"]
    value_fen: Fen = Field(0, ge=0, le=MAX_FEN)
    discount_percent: whole(1, 99) | None = Field(None, description="85 = pay 85 % (8.5折)")
    gift_name: str | None = Field(None, max_length=60)
    min_spend_fen: Fen = Field(0, ge=0, le=MAX_FEN)
    valid_days: whole(1, 3650) | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    stock: whole(0, MAX_INT) | None = None
    per_member_limit: whole(1, MAX_INT) | None = None
    points_price: whole(1, MAX_INT) | None = None
    description: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "cash" and self.value_fen <= 0:
            raise ValueError("a cash coupon needs value_fen > 0")
        if self.kind == "discount" and self.discount_percent is None:
            raise ValueError("a discount coupon needs discount_percent")
        if self.kind == "gift" and not self.gift_name:
            raise ValueError("a gift coupon needs gift_name")
        if (self.valid_days is None) == (self.valid_until is None):
            raise ValueError("give either valid_days (from issue) or valid_until (a fixed window)")
        return self


class TemplateOut(TemplateIn):
    model_config = ConfigDict(from_attributes=True)
    issued_count: int
    active: bool
    benefit: str


def template_out(template: CouponTemplate) -> TemplateOut:
    return TemplateOut.model_validate({**{k: getattr(template, k) for k in TemplateOut.model_fields if k != "benefit"},
                                       "benefit": coupons.describe(template)})


class TemplatePage(BaseModel):
    templates: list[TemplateOut]


@api.route("GET", "/api/v1/coupon-templates", summary="Coupon templates",
           roles=[Role.HQ_ADMIN, Role.STORE_MANAGER, Role.GUIDE, Role.INTEGRATION], response=TemplatePage)
async def list_templates(call: ApiCall) -> TemplatePage:
    async with call.services.db.session() as session:
        rows = (await session.scalars(select(CouponTemplate).order_by(CouponTemplate.code))).all()
    return TemplatePage(templates=[template_out(t) for t in rows])


@api.route("POST", "/api/v1/coupon-templates", summary="Create a coupon template", roles=[Role.HQ_ADMIN],
           body=TemplateIn, response=TemplateOut, status=201)
async def create_template(call: ApiCall) -> TemplateOut:
    body: TemplateIn = call.body
    if body.valid_from and body.valid_until and body.valid_until <= body.valid_from:
        # Well-formed (a schema cannot compare two fields) but meaningless: 422, as for references.
        raise ApiError(422, "empty_window", "the coupon would never be valid",
                       [{"field": "valid_until", "problem": "must be after valid_from"}])
    try:
        async with call.services.db.session() as session, session.begin():
            template = CouponTemplate(**call.body.model_dump(), issued_count=0, active=True)
            session.add(template)
            await session.flush()
    except IntegrityError:
        raise ApiError(409, "template_exists", f"coupon template {call.body.code} already exists") from None
    return template_out(template)


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template_code: str = Field(min_length=1, max_length=32)
    member_nos: list[str] = Field(min_length=1, max_length=1000)
    source: Literal["manual", "campaign", "sop"] = "manual"
    idempotency_key: str = Field(min_length=1, max_length=80, description="same key: the same coupons back")


class IssueOut(BaseModel):
    coupons: list[CouponOut]


@api.route("POST", "/api/v1/coupons/issue", summary="Issue a coupon to members (all or none)",
           roles=[Role.HQ_ADMIN, Role.STORE_MANAGER], body=IssueIn, response=IssueOut, status=201)
async def issue_route(call: ApiCall) -> IssueOut:
    body: IssueIn = call.body
    actor = f"token:{call.principal.token_id}"
    issued = []
    async with call.services.db.session() as session, session.begin():
        template = await coupons.get_template(session, body.template_code)
        for member_no in dict.fromkeys(body.member_nos):
            try:
                member = await ledger.lock_member(session, (await scoped_member(call, session, member_no)).id)
                key = f"{body.idempotency_key}:{member.id}"
                replay = await session.scalar(select(Coupon.id).where(Coupon.issue_key == key))
                coupon = await coupons.issue_coupon(session, member, body.template_code, source=body.source, key=key)
            except MemberError as exc:
                exc.details = {**(exc.details or {}), "member_no": member_no}
                raise
            if replay is None:
                session.add(MemberAudit(member_id=member.id, action="coupon_issue", actor=actor,
                                        details={"coupon": coupon.code, "template": body.template_code}))
            issued.append(CouponOut.of(coupon, template))
    return IssueOut(coupons=issued)


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idempotency_key: str = Field(min_length=1, max_length=100)
    member_no: str | None = Field(None, description="refused if the coupon belongs to someone else")
    order_no: str | None = Field(None, max_length=64)
    store_code: str | None = Field(None, max_length=32)
    spend_fen: whole(0, MAX_FEN) | None = None


@api.route("POST", "/api/v1/coupons/{code}/redeem", summary="Redeem a coupon at a till (idempotent)",
           roles=[Role.INTEGRATION, Role.HQ_ADMIN], body=RedeemIn, response=CouponOut)
async def redeem_route(call: ApiCall) -> CouponOut:
    body: RedeemIn = call.body
    async with call.services.db.session() as session, session.begin():
        member_id = (await get_member(session, body.member_no)).id if body.member_no else None
        coupon = await coupons.redeem_coupon(session, call.path["code"], key=f"till:{body.idempotency_key}",
                                             member_id=member_id, order_no=body.order_no,
                                             store_code=body.store_code, spend_fen=body.spend_fen)
        return CouponOut.of(coupon, await coupons.get_template(session, coupon.template_code))


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=200, pattern=NON_BLANK)


@api.route("POST", "/api/v1/coupons/{code}/void", summary="Void a coupon (audited)", roles=[Role.HQ_ADMIN],
           body=VoidIn, response=CouponOut)
async def void_route(call: ApiCall) -> CouponOut:
    async with call.services.db.session() as session, session.begin():
        coupon = await coupons.void_coupon(session, call.path["code"], call.body.reason)
        session.add(MemberAudit(member_id=coupon.member_id, action="coupon_void",
                                actor=f"token:{call.principal.token_id}",
                                details={"coupon": coupon.code, "reason": call.body.reason}))
        return CouponOut.of(coupon, await coupons.get_template(session, coupon.template_code))


@api.route("GET", "/api/v1/coupons/{code}", summary="One coupon", roles=[Role.HQ_ADMIN, Role.INTEGRATION],
           response=CouponOut)
async def get_coupon(call: ApiCall) -> CouponOut:
    async with call.services.db.session() as session:
        coupon = await session.scalar(select(Coupon).where(Coupon.code == call.path["code"]))
        if coupon is None:
            raise ApiError(404, "coupon_not_found", f"no coupon {call.path['code']}")
        return CouponOut.of(coupon, await coupons.get_template(session, coupon.template_code))

