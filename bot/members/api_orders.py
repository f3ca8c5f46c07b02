"""Admin API: orders from the tills and the online mall, and their refunds."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.fields import MAX_FEN, NON_BLANK, WholeNumber
from bot.api.spec import ApiCall, api, parse_model, read_json_body
from bot.members import orders
from bot.members.api_schemas import PHONE
from bot.members.config import MembersConfig
from bot.members.models import Member, Order


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    sku: str = Field(min_length=1, max_length=64, pattern=NON_BLANK)
    name: str = Field(min_length=1, max_length=100, pattern=NON_BLANK)
    qty: WholeNumber = Field(ge=1, le=100_000)
    price_fen: WholeNumber = Field(ge=0, le=MAX_FEN, description="unit price in fen (分)")


BUYER = ("member_no", "external_userid", "unionid", "phone")
# What _consistent checks, said in the OpenAPI document.
ORDER_RULES = {"allOf": [
    {"if": {"properties": {"channel": {"const": "store"}}},
     "then": {"required": ["store_code"], "properties": {"store_code": {"type": "string", "pattern": NON_BLANK}}}},
    {"if": {"properties": {"coupon_codes": {"minItems": 1}}, "required": ["coupon_codes"]},
     "then": {"anyOf": [{"required": [name], "properties": {name: {"type": "string", "pattern": NON_BLANK}}}
                        for name in BUYER]}},
]}


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=ORDER_RULES)
    order_no: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    member_no: str | None = Field(None, max_length=20)
    external_userid: str | None = Field(None, min_length=1, max_length=64, pattern=NON_BLANK)
    unionid: str | None = Field(None, min_length=1, max_length=64, pattern=NON_BLANK)
    phone: str | None = Field(None, pattern=PHONE)
    store_code: str | None = Field(None, max_length=32)
    guide_userid: str | None = Field(None, max_length=64)
    channel: Literal["store", "online"]
    amount_fen: WholeNumber = Field(ge=0, le=MAX_FEN, description="amount paid, in fen (分): 12800 = ¥128.00")
    items: list[OrderItem] = Field(default_factory=list, max_length=500)
    coupon_codes: list[str] = Field(default_factory=list, max_length=20, json_schema_extra={"uniqueItems": True})
    paid_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self):
        if self.channel == "store" and not self.store_code:
            raise ValueError("a store order needs store_code")
        if self.coupon_codes and not any(getattr(self, name) for name in BUYER):
            raise ValueError("coupons are used by a member: give member_no or an identity")
        if len(set(self.coupon_codes)) != len(self.coupon_codes):
            raise ValueError("coupon_codes has duplicates")
        return self


class OrderOut(BaseModel):
    order_no: str
    status: str
    member_no: str | None
    store_code: str | None
    guide_userid: str | None
    attribution: str
    channel: str
    amount_fen: int
    points_earned: int
    points_balance: int | None
    coupon_codes: list[str]
    purchase_count: int | None
    stage: str | None
    paid_at: dt.datetime
    refunded_at: dt.datetime | None


async def order_out(session, order: Order) -> OrderOut:
    member = order.member_id and await session.get(Member, order.member_id)
    return OrderOut(
        order_no=order.order_no, status=order.status, member_no=member and member.member_no,
        store_code=order.store_code, guide_userid=order.guide_userid, attribution=order.attribution,
        channel=order.channel, amount_fen=order.amount_fen, points_earned=order.points_earned,
        points_balance=member and member.points_balance, coupon_codes=order.coupon_codes,
        purchase_count=member and member.purchase_count, stage=member and member.stage, paid_at=order.paid_at,
        refunded_at=order.refunded_at,
    )


@api.route("POST", "/api/v1/orders", summary="Record an order (idempotent on order_no); 200 on a replay",
           roles=[Role.INTEGRATION, Role.HQ_ADMIN], body=OrderIn, response=OrderOut, status=201)
async def create_order(call: ApiCall):
    async with call.services.db.session() as session, session.begin():
        order, created = await orders.record_order(session, call.services.config(MembersConfig), call.body.model_dump())
        out = await order_out(session, order)
    if created:
        return out
    return web.Response(text=out.model_dump_json(), status=200, content_type="application/json")


@api.route("GET", "/api/v1/orders/{order_no}", summary="One order",
           roles=[Role.INTEGRATION, Role.HQ_ADMIN, Role.STORE_MANAGER], response=OrderOut)
async def get_order(call: ApiCall) -> OrderOut:
    async with call.services.db.session() as session:
        order = await session.scalar(select(Order).where(Order.order_no == call.path["order_no"]))
        if order is None or not call.principal.can_see_store(order.store_code):
            raise ApiError(404, "order_not_found", f"no order {call.path['order_no']}")
        return await order_out(session, order)


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field("", max_length=200)


@api.route("POST", "/api/v1/orders/{order_no}/refund", summary="Refund an order: reverse points, coupons, stats",
           roles=[Role.INTEGRATION, Role.HQ_ADMIN], response=OrderOut)
async def refund_route(call: ApiCall) -> OrderOut:
    # The body ({"reason": …}) is optional: a till may send nothing.
    raw = await read_json_body(call.request)
    body = RefundIn() if raw is None else parse_model(RefundIn, raw, "body")
    async with call.services.db.session() as session, session.begin():
        order = await orders.refund_order(session, call.services.config(MembersConfig), call.path["order_no"], body.reason)
        return await order_out(session, order)
