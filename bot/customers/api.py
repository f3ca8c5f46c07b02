"""Admin API for customers: list with filters, and one customer with their binding history.

Store managers see customers attributed to their stores; guides see their own customers.
A customer outside the caller's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

import bot.customers.followup  # noqa: F401  (registers the welcome and enrich jobs)
import bot.customers.handover  # noqa: F401  (registers the handover route)
from bot.api.errors import ApiError
from bot.api.fields import MAX_BIGINT, NON_BLANK
from bot.api.spec import ApiCall, api
from bot.customers import history  # noqa: F401  (registers the orders and outreach routes)
from bot.customers.models import Customer, CustomerBinding
from bot.customers.scope import ROLES, scoped
from bot.customers.search import customer_stage, join_member, linked_member, matches, phone_owners
from bot.members.lifecycle import STAGES
from bot.storage import utcnow
from bot.stores.models import Channel, Guide, Store


class CustomersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guide_userid: str | None = None
    store_code: str | None = None
    channel_code: str | None = None
    status: str | None = Field(None, pattern="^(bound|unbound)$")
    tag: str | None = Field(None, description="customers carrying this tag name")
    q: str | None = Field(None, min_length=1, max_length=100, pattern=NON_BLANK,
                          description="name (substring), member phone (exact) or external_userid (exact or prefix)")
    stage: Literal[STAGES] | None = Field(None, description="lifecycle stage, as in the audience language")
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
    stage: str | None = Field(None, description="lifecycle stage (new_friend when not a member)")
    member_no: str | None = Field(None, description="the linked member's number, if a member")


class CustomerPage(BaseModel):
    items: list[CustomerRow]
    customers: list[CustomerRow] = Field(description="the same rows as items (the older name)")


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
    member = linked_member()
    stage = customer_stage(member, utcnow())
    statement = join_member(scoped(select(Customer, stage, member.c.member_no), call.principal), member)
    for column, value in ((Customer.guide_userid, q.guide_userid), (Customer.store_code, q.store_code),
                          (Customer.channel_code, q.channel_code), (Customer.status, q.status)):
        if value is not None:
            statement = statement.where(column == value)
    if q.stage is not None:
        statement = statement.where(stage == q.stage)
    if q.before_id:
        statement = statement.where(Customer.id < q.before_id)
    statement = statement.order_by(Customer.id.desc())
    async with call.services.db.session() as session:
        if q.q is not None:
            text = q.q.strip()
            dialect = call.services.db.engine.dialect.name
            statement = statement.where(matches(text, await phone_owners(session, text), dialect))
        if q.tag is None:
            found = (await session.execute(statement.limit(q.limit))).all()
        else:
            # Tags are a JSON list; filter here so the query stays portable across databases.
            found = [row for row in (await session.execute(statement.limit(q.limit * 20))).all()
                     if q.tag in (row[0].tags or [])][: q.limit]
    rows = [CustomerRow.model_validate(customer).model_copy(update={"stage": stage, "member_no": member_no})
            for customer, stage, member_no in found]
    return CustomerPage(items=rows, customers=rows)


@api.route("GET", "/api/v1/customers/{external_userid}", summary="A customer: guide, store, channel, tags, history",
           roles=ROLES, response=CustomerDetail)
async def get_customer(call: ApiCall) -> CustomerDetail:
    external_userid = call.path["external_userid"]
    async with call.services.db.session() as session:
        member = linked_member()
        found = (await session.execute(join_member(
            scoped(select(Customer, customer_stage(member, utcnow()), member.c.member_no), call.principal), member)
            .where(Customer.external_userid == external_userid))).first()
        if found is None:
            raise ApiError(404, "unknown_customer", f"no customer {external_userid!r}")
        customer, stage, member_no = found
        bindings = (await session.scalars(
            select(CustomerBinding).where(CustomerBinding.external_userid == external_userid)
            .order_by(CustomerBinding.started_at, CustomerBinding.id))).all()
        guide = customer.guide_userid and await session.scalar(
            select(Guide).where(Guide.userid == customer.guide_userid))
        store = customer.store_code and await session.scalar(select(Store).where(Store.code == customer.store_code))
        channel = customer.channel_code and await session.scalar(
            select(Channel).where(Channel.code == customer.channel_code))
    row = CustomerRow.model_validate(customer).model_dump() | {"stage": stage, "member_no": member_no}
    return CustomerDetail(
        **row, avatar=customer.avatar, gender=customer.gender, unionid=customer.unionid,
        guide=Named(code=guide.userid, name=guide.name) if guide else None,
        store=Named(code=store.code, name=store.name) if store else None,
        channel=(Named(code=channel.code, name=channel.name) if channel
                 else Named(code=customer.channel_code, name=customer.channel_code) if customer.channel_code
                 else None),
        bindings=[BindingOut.model_validate(b) for b in bindings],
    )
