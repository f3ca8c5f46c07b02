"""Planning: the audience read once, in SQL, each customer classified and given a sender.

A customer is excluded, with the reason, when they are no longer a friend, when their guide left
and nobody took them over, when the caps are reached (the outreach ledger), when held out (a hash
of source and customer), or — with a coupon — when they are not a member. The rest are planned in
chunks of ≤ 10,000 per sender: one WeCom task each. Everything is INSERT … SELECT: no customer
row passes through Python, so 1,000,000 customers plan in seconds.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, insert, literal, literal_column, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import Customer, CustomerBinding
from bot.jobs.queue import job_row
from bot.jobs.wakeup import notify_workers
from bot.members.config import MembersConfig
from bot.storage.models import Job
from bot.stores.models import Guide
from sop.audience import Audience, active_member, audience_conditions, member_join
from sop.outreach.config import OutreachConfig
from sop.outreach.models import OutreachLedger, OutreachPlan, OutreachRecipient, OutreachSend

# reason → recipient status
EXCLUSIONS = {"not_friend": "not_friend", "guide_left": "skipped", "over_cap": "over_cap",
              "held_out": "held_out", "no_member": "skipped", "targeted": "planned"}
HASH_MULTIPLIER, HASH_PRIME = 2654435761, 4294967291


def source_salt(source: str) -> int:
    """A number per source, so each campaign holds out a different set of customers."""
    value = 0
    for char in source:
        value = (value * 131 + ord(char)) % 1_000_003
    return value


def held_out_expression(source: str, percent: int):
    """Deterministic draw: a multiplicative hash of (source, customer id) modulo 100 < percent."""
    if percent <= 0:
        return literal(False)
    salted = Customer.id + literal_column(str(source_salt(source)))
    bucket = (salted * literal_column(str(HASH_MULTIPLIER))) % literal_column(str(HASH_PRIME)) % 100
    return bucket < percent


def _sender_expression():
    """The customer's guide, or when that guide resigned, the active guide they were handed to."""
    guide = Guide.__table__.alias("attributed_guide")
    takeover_guide = Guide.__table__.alias("takeover_guide")
    takeover = (
        select(CustomerBinding.guide_userid)
        .join(takeover_guide, takeover_guide.c.userid == CustomerBinding.guide_userid)
        .where(CustomerBinding.external_userid == Customer.external_userid, CustomerBinding.ended_at.is_(None),
               CustomerBinding.guide_userid != Customer.guide_userid, takeover_guide.c.status == "active")
        .order_by(CustomerBinding.started_at.desc()).limit(1).scalar_subquery()
    )
    sender = case((guide.c.status == "resigned", takeover), else_=Customer.guide_userid)
    return guide, sender


def classified(audience: Audience, *, source: str, holdout_percent: int, needs_member: bool,
               config: OutreachConfig, members: MembersConfig, now: dt.datetime, dialect: str):
    """(FROM-joined select base, sender, reason, member alias): the audience with every exclusion."""
    member = active_member()
    guide, sender = _sender_expression()
    day_ago, week_ago = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    ledger = (
        select(OutreachLedger.external_userid.label("external_userid"),
               func.count().label("week"),
               func.sum(case((OutreachLedger.at >= day_ago, 1), else_=0)).label("day"))
        .where(OutreachLedger.at >= week_ago).group_by(OutreachLedger.external_userid).subquery("recent_sends")
    )
    over_cap = or_(func.coalesce(ledger.c.day, 0) >= config.cap_per_day,
                   func.coalesce(ledger.c.week, 0) >= config.cap_per_week)
    whens = [(Customer.status != "bound", "not_friend"), (sender.is_(None), "guide_left"),
             (over_cap, "over_cap"), (held_out_expression(source, holdout_percent), "held_out")]
    if needs_member:
        whens.append((member.c.id.is_(None), "no_member"))
    reason = case(*whens, else_="targeted")

    def base(*columns):
        statement = member_join(select(*columns), member)
        statement = statement.outerjoin(guide, guide.c.userid == Customer.guide_userid)
        statement = statement.outerjoin(ledger, ledger.c.external_userid == Customer.external_userid)
        return statement.where(Customer.guide_userid.is_not(None),
                               *audience_conditions(audience, member, now=now, dialect=dialect, members=members))

    return base, sender, reason, member


async def without_jit(session: AsyncSession) -> None:
    """PostgreSQL's JIT spends ~1.5 s compiling these queries (their estimates look large) to win
    far less at run time: turn it off for the current transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))


async def preview(session: AsyncSession, audience: Audience, *, config: OutreachConfig, members: MembersConfig,
                  now: dt.datetime, source: str = "preview", holdout_percent: int = 0,
                  needs_member: bool = False) -> list[tuple]:
    """(store_code, sender, reason, count) rows: one GROUP BY query."""
    dialect = session.get_bind().dialect.name
    base, sender, reason, _ = classified(audience, source=source, holdout_percent=holdout_percent,
                                         needs_member=needs_member, config=config, members=members, now=now,
                                         dialect=dialect)
    statement = base(Customer.store_code, sender.label("sender"), reason.label("reason"), func.count()
                     ).group_by(Customer.store_code, sender, reason)
    await without_jit(session)
    return [tuple(row) for row in (await session.execute(statement)).all()]


async def anyone_to_send(session: AsyncSession, audience: Audience, *, config: OutreachConfig,
                         members: MembersConfig, now: dt.datetime, source: str, holdout_percent: int,
                         needs_member: bool) -> bool:
    """Whether at least one customer of the audience would be sent to (stops at the first)."""
    dialect = session.get_bind().dialect.name
    base, _, reason, _ = classified(audience, source=source, holdout_percent=holdout_percent,
                                    needs_member=needs_member, config=config, members=members, now=now,
                                    dialect=dialect)
    await without_jit(session)
    return await session.scalar(base(Customer.id).where(reason == "targeted").limit(1)) is not None


async def plan_recipients(session: AsyncSession, plan: OutreachPlan, audience: Audience, *,
                          config: OutreachConfig, members: MembersConfig, now: dt.datetime) -> None:
    """Write every customer of the audience as a recipient, the planned ones in the ledger, and
    one send per (sender, chunk). Idempotent: a plan already written is left as it is."""
    dialect = session.get_bind().dialect.name
    source = plan.source
    base, sender, reason, member = classified(
        audience, source=source, holdout_percent=plan.holdout_percent,
        needs_member=plan.coupon_template_code is not None, config=config, members=members, now=now,
        dialect=dialect)
    inner = base(Customer.id.label("customer_id"), Customer.external_userid.label("external_userid"),
                 member.c.id.label("member_id"), sender.label("sender"), Customer.store_code.label("store_code"),
                 reason.label("reason")).subquery("classified")
    status = case(*[(inner.c.reason == name, value) for name, value in EXCLUSIONS.items()], else_="skipped")
    position = func.row_number().over(partition_by=[inner.c.sender, inner.c.reason], order_by=inner.c.customer_id)
    chunk = case((inner.c.reason == "targeted", (position - 1) // config.chunk_size), else_=None)
    rows = select(literal(source), inner.c.customer_id, inner.c.external_userid, inner.c.member_id, inner.c.sender,
                  inner.c.store_code, chunk, status,
                  case((inner.c.reason.in_(("targeted", "held_out")), None), else_=inner.c.reason))
    await without_jit(session)
    if dialect == "postgresql":  # the window's sort of every customer stays in memory, not on disk
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    columns = ["source", "customer_id", "external_userid", "member_id", "guide_userid", "store_code", "chunk",
               "status", "reason"]
    await session.execute(insert(OutreachRecipient).from_select(columns, rows))
    planned = select(OutreachRecipient).where(OutreachRecipient.source == source,
                                              OutreachRecipient.status == "planned").subquery()
    await session.execute(insert(OutreachLedger).from_select(
        ["external_userid", "source", "at"],
        select(planned.c.external_userid, planned.c.source, literal(now, OutreachLedger.at.type))))
    await session.execute(insert(OutreachSend).from_select(
        ["source", "guide_userid", "chunk", "recipients", "status"],
        select(planned.c.source, planned.c.guide_userid, planned.c.chunk, func.count(), literal("planned"))
        .group_by(planned.c.source, planned.c.guide_userid, planned.c.chunk)))


async def enqueue_many(session: AsyncSession, jobs: list[tuple[str, dict, str]], *,
                       max_attempts: int = 8, batch: int = 1000, wake: bool = True) -> None:
    """(kind, payload, dedupe_key) jobs in multi-row INSERTs; an existing key is kept as it is.
    Without `wake`, workers find them at their next poll."""
    insert_for = sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    for start in range(0, len(jobs), batch):
        values = [job_row(kind, payload, dedupe_key=key, max_attempts=max_attempts)
                  for kind, payload, key in jobs[start:start + batch]]
        await session.execute(insert_for(Job).values(values).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    if jobs and wake:
        await notify_workers(session)
