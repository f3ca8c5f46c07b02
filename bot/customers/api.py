"""Admin API for customers: one customer with their binding history. The list and search, which
read the members' stages, are bot/members/customer_search.py.

Store managers see customers attributed to their stores; guides see their own customers.
A customer outside the caller's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.customers.models import Customer, CustomerBinding
from bot.customers.scope import ROLES, scoped
from bot.stores.models import Channel, Guide, Store


class CustomerRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    external_userid: str
    name: str
    guide_userid: str | None
    store_code: str | None
    channel_code: str | None
    status: str
    tags: list[str]
    first_bound_at: dt.datetime | None
    bound_at: dt.datetime | None


class Named(BaseModel):
    code: str
    name: str


class BindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    guide_userid: str
    store_code: str | None
    channel_code: str | None
    qrcode_code: str | None
    state: str | None
    source: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None


class CustomerDetail(CustomerRow):
    avatar: str | None
    gender: int
    unionid: str | None
    guide: Named | None
    store: Named | None
    channel: Named | None
    bindings: list[BindingOut]


@api.route("GET", "/api/v1/customers/{external_userid}", summary="A customer: guide, store, channel, tags, history",
           roles=ROLES, response=CustomerDetail)
async def get_customer(call: ApiCall) -> CustomerDetail:
    external_userid = call.path["external_userid"]
    async with call.services.db.session() as session:
        customer = await session.scalar(
            scoped(select(Customer), call.principal).where(Customer.external_userid == external_userid))
        if customer is None:
            raise ApiError(404, "unknown_customer", f"no customer {external_userid!r}")
        bindings = (await session.scalars(
            select(CustomerBinding).where(CustomerBinding.external_userid == external_userid)
            .order_by(CustomerBinding.started_at, CustomerBinding.id))).all()
        guide = customer.guide_userid and await session.scalar(
            select(Guide).where(Guide.userid == customer.guide_userid))
        store = customer.store_code and await session.scalar(select(Store).where(Store.code == customer.store_code))
        channel = customer.channel_code and await session.scalar(
            select(Channel).where(Channel.code == customer.channel_code))
    row = CustomerRow.model_validate(customer).model_dump()
    return CustomerDetail(
        **row, avatar=customer.avatar, gender=customer.gender, unionid=customer.unionid,
        guide=Named(code=guide.userid, name=guide.name) if guide else None,
        store=Named(code=store.code, name=store.name) if store else None,
        channel=(Named(code=channel.code, name=channel.name) if channel
                 else Named(code=customer.channel_code, name=customer.channel_code) if customer.channel_code
                 else None),
        bindings=[BindingOut.model_validate(b) for b in bindings],
    )
