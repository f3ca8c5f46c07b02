"""The customer list and search: filters, one search box (`q`) and the lifecycle stage, as indexable SQL.

`q` matches a customer's name (any case: anywhere in it from 3 characters on, at its start for 1–2
characters), the phone of the member linked to the customer (exact) or the external_userid (exact
or prefix). On PostgreSQL a trigram index (pg_trgm, when the server has it) serves the name search
and pattern indexes serve the prefixes (migration 0011_console_api); trigrams cannot find 2
characters inside a name, so a short query searches the start of names, which an index can. The
phone is looked up first in the members' unique index, so the branches combine as one indexed OR
that the planner can answer newest-first. The stage is computed from the member row with the
audience language's rule (bot/members/lifecycle.py), so it is right between nightly refreshes.
It lives with the members because it reads their rows; the customer page is bot/customers/api.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.fields import MAX_BIGINT, NON_BLANK
from bot.api.spec import ApiCall, api
from bot.customers.api import CustomerRow
from bot.customers.models import Customer
from bot.customers.scope import ROLES, scoped
from bot.members.config import MembersConfig
from bot.members.lifecycle import STAGES, stage_expression
from bot.members.models import Member
from bot.storage import utcnow

LIKE_ESCAPE = "\\"
SUBSTRING_FROM = 3  # characters: shorter queries match the start of names


class CustomersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guide_userid: str | None = None
    store_code: str | None = None
    channel_code: str | None = None
    status: str | None = Field(None, pattern="^(bound|unbound)$")
    tag: str | None = Field(None, description="customers carrying this tag name")
    q: str | None = Field(None, min_length=1, max_length=100, pattern=NON_BLANK,
                          description="name (any case; 3+ characters anywhere in it, 1–2 at its start), "
                                      "member phone (exact) or external_userid (exact or prefix)")
    stage: Literal[STAGES] | None = Field(None, description="lifecycle stage, as in the audience language")
    before_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="page: customers older than this id")
    limit: int = Field(50, ge=1, le=500)


class CustomerListRow(CustomerRow):
    stage: str = Field(description="lifecycle stage (new_friend when not a member)")
    member_no: str | None = Field(description="the linked member's number, if a member")


class CustomerPage(BaseModel):
    items: list[CustomerListRow]
    customers: list[CustomerListRow] = Field(description="the same rows as items (the older name)")


def like_literal(text: str) -> str:
    """`text` with LIKE's wildcards taken literally."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def join_member(statement: Select, member) -> Select:
    """Outer-join a customer's active member, if any (`member`: an alias of the members table)."""
    return statement.outerjoin(
        member, (member.c.external_userid == Customer.external_userid) & (member.c.status == "active"))


async def phone_owners(session: AsyncSession, q: str) -> list[str]:
    """external_userids of the members whose phone is exactly `q` (at most one: phones are unique)."""
    return list((await session.scalars(
        select(Member.external_userid).where(Member.phone == q, Member.external_userid.is_not(None)))).all())


def matches(q: str, phone_userids: list[str], dialect: str) -> ColumnElement[bool]:
    literal = like_literal(q)
    if len(q) >= SUBSTRING_FROM:
        name = Customer.name.ilike("%" + literal + "%", escape=LIKE_ESCAPE)
    else:
        name = func.lower(Customer.name).like(like_literal(q.lower()) + "%", escape=LIKE_ESCAPE)
    if dialect == "postgresql":  # case-sensitive like the ids themselves; the pattern index serves it
        prefix = Customer.external_userid.like(literal + "%", escape=LIKE_ESCAPE)
    else:  # SQLite's LIKE ignores case
        prefix = func.substr(Customer.external_userid, 1, len(q)) == q
    branches = [name, prefix]
    if phone_userids:
        branches.append(Customer.external_userid.in_(phone_userids))
    return or_(*branches)


@api.route("GET", "/api/v1/customers", summary="Customers, newest first: filtered and searched", roles=ROLES,
           query=CustomersQuery, response=CustomerPage)
async def list_customers(call: ApiCall) -> CustomerPage:
    q: CustomersQuery = call.query
    member = Member.__table__.alias("linked_member")
    stage = stage_expression(call.services.config(MembersConfig), utcnow(), member.c)
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
    rows = [CustomerListRow(**CustomerRow.model_validate(customer).model_dump(), stage=stage, member_no=member_no)
            for customer, stage, member_no in found]
    return CustomerPage(items=rows, customers=rows)
