"""Admin API for customers: list with filters, and one customer with their binding history.

Store managers see customers attributed to their stores; guides see their own customers.
A customer outside the caller's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.api.auth import Principal, Role
from bot.api.errors import ApiError
from bot.api.fields import MAX_BIGINT
from bot.api.spec import ApiCall, api
from bot.customers.models import Customer, CustomerBinding
from bot.stores.models import Channel, Guide, Store

# Not the integration role: a till finds members through /api/v1/members and needs no customer lists.
ROLES = [Role.HQ_ADMIN, Role.STORE_MANAGER, Role.GUIDE]


def scoped(statement, principal: Principal):
    if principal.role == Role.STORE_MANAGER:
        return statement.where(Customer.store_code.in_(principal.store_codes))
    if principal.role == Role.GUIDE:
        return statement.where(Customer.guide_userid == principal.guide_userid)
    return statement


class CustomersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guide_userid: str | None = None
    store_code: str | None = None
    channel_code: str | None = None
    status: str | None = Field(None, pattern="^(bound|unbound)$")
    tag: str | None = Field(None, description="customers carrying this tag name")
    before_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="page: customers older than this id")
    limit: int = Field(50, ge=1, le=500)


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


class CustomerPage(BaseModel):
    customers: list[CustomerRow]


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


@api.route("GET", "/api/v1/customers", summary="Customers, newest first, filtered", roles=ROLES,
           query=CustomersQuery, response=CustomerPage)
async def list_customers(call: ApiCall) -> CustomerPage:
    q: CustomersQuery = call.query
    statement = scoped(select(Customer), call.principal).order_by(Customer.id.desc())
    for column, value in ((Customer.guide_userid, q.guide_userid), (Customer.store_code, q.store_code),
                          (Customer.channel_code, q.channel_code), (Customer.status, q.status)):
        if value is not None:
            statement = statement.where(column == value)
    if q.before_id:
        statement = statement.where(Customer.id < q.before_id)
    async with call.services.db.session() as session:
        if q.tag is None:
            rows = (await session.scalars(statement.limit(q.limit))).all()
        else:
            # Tags are a JSON list; filter here so the query stays portable across databases.
            rows = [row for row in (await session.scalars(statement.limit(q.limit * 20))).all()
                    if q.tag in (row.tags or [])][: q.limit]
    return CustomerPage(customers=[CustomerRow.model_validate(row) for row in rows])


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
