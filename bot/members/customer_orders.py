"""A customer's orders, newest first, for the console's customer page.

Scoped like the customer page: a customer outside the caller's scope answers 404, exactly as an
unknown one. An order counts when it names the customer or their member (a till may record an
order by phone before the member was linked to the customer).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from bot.api.fields import MAX_BIGINT
from bot.api.spec import ApiCall, api
from bot.customers.scope import ROLES, visible_customer
from bot.members.models import Member, Order


class CustomerOrdersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    before_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="page: orders older than this id")
    limit: int = Field(50, ge=1, le=200)


class CustomerOrderRow(BaseModel):
    id: int
    order_no: str
    store_code: str | None
    guide_userid: str | None
    channel: str
    amount_fen: int
    refunded_fen: int = Field(description="amount_fen once refunded (a refund is always whole), else 0")
    points_earned: int
    coupon_codes: list[str]
    items: list[dict]
    status: str
    paid_at: dt.datetime
    created_at: dt.datetime
    refunded_at: dt.datetime | None


class CustomerOrderPage(BaseModel):
    items: list[CustomerOrderRow]


@api.route("GET", "/api/v1/customers/{external_userid}/orders", summary="A customer's orders, newest first",
           roles=ROLES, query=CustomerOrdersQuery, response=CustomerOrderPage)
async def customer_orders(call: ApiCall) -> CustomerOrderPage:
    q: CustomerOrdersQuery = call.query
    external_userid = call.path["external_userid"]
    async with call.services.db.session() as session:
        await visible_customer(session, call.principal, external_userid)
        # An order recorded by phone before the member was linked to the customer carries only the member.
        member_ids = (await session.scalars(select(Member.id).where(Member.external_userid == external_userid))).all()
        mine = Order.external_userid == external_userid
        statement = select(Order).where(or_(mine, Order.member_id.in_(member_ids)) if member_ids else mine)
        if q.before_id:
            statement = statement.where(Order.id < q.before_id)
        orders = (await session.scalars(statement.order_by(Order.id.desc()).limit(q.limit))).all()
    return CustomerOrderPage(items=[CustomerOrderRow(
        id=order.id, order_no=order.order_no, store_code=order.store_code, guide_userid=order.guide_userid,
        channel=order.channel, amount_fen=order.amount_fen,
        refunded_fen=order.amount_fen if order.status == "refunded" else 0,
        points_earned=order.points_earned, coupon_codes=order.coupon_codes or [], items=order.items or [],
        status=order.status, paid_at=order.paid_at, created_at=order.created_at, refunded_at=order.refunded_at,
    ) for order in orders])
