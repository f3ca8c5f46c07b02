"""Customer search for the console: one box (`q`) and the lifecycle stage, as indexable SQL.

`q` matches a customer's name (any case: anywhere in it from 3 characters on, at its start for 1–2
characters), the phone of the member linked to the customer (exact) or the external_userid (exact
or prefix). On PostgreSQL a trigram index (pg_trgm, when the server has it) serves the name search
and pattern indexes serve the prefixes (migration 0011_console_api); trigrams cannot find 2
characters inside a name, so a short query searches the start of names, which an index can. The
phone is looked up first in the members' unique index, so the branches combine as one indexed OR
that the planner can answer newest-first.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import Customer
from bot.members.config import members_config
from bot.members.lifecycle import stage_expression
from bot.members.models import Member

LIKE_ESCAPE = "\\"
SUBSTRING_FROM = 3  # characters: shorter queries match the start of names


def like_literal(text: str) -> str:
    """`text` with LIKE's wildcards taken literally."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def linked_member():
    """The members table aliased for the outer join: a customer's active member, if any."""
    return Member.__table__.alias("linked_member")


def join_member(statement: Select, member) -> Select:
    return statement.outerjoin(
        member, (member.c.external_userid == Customer.external_userid) & (member.c.status == "active"))


def customer_stage(member, now: dt.datetime):
    """The lifecycle stage computed from the member row (right between nightly stage refreshes)."""
    return stage_expression(members_config(), now, member.c)


async def phone_owners(session: AsyncSession, q: str) -> list[str]:
    """external_userids of the members whose phone is exactly `q` (at most one: phones are unique)."""
    return list((await session.scalars(
        select(Member.external_userid).where(Member.phone == q, Member.external_userid.is_not(None)))).all())


def matches(q: str, phone_userids: list[str], dialect: str) -> ColumnElement[bool]:
    literal = like_literal(q)
    if dialect == "postgresql":  # case-sensitive like the ids themselves; the pattern index serves it
        prefix = Customer.external_userid.like(literal + "%", escape=LIKE_ESCAPE)
    else:  # SQLite's LIKE ignores case
        prefix = func.substr(Customer.external_userid, 1, len(q)) == q
    if len(q) >= SUBSTRING_FROM:
        name = Customer.name.ilike("%" + literal + "%", escape=LIKE_ESCAPE)
    else:
        name = func.lower(Customer.name).like(like_literal(q.lower()) + "%", escape=LIKE_ESCAPE)
    branches = [name, prefix]
    if phone_userids:
        branches.append(Customer.external_userid.in_(phone_userids))
    return or_(*branches)
