"""Adapter onto the outreach engine for SOP items: each item being sent (status `sending`, its
customers' runs `planning` in it) becomes one outreach plan `sop:<item id>` with the same
recipients, cap-ledger rows and per-(guide, chunk) sends that sop/outreach/plan.py writes for a
campaign, so fan-out, result sync, conversions and the shared frequency cap work unchanged.

Everything is INSERT … SELECT / UPDATE … FROM: no customer passes through Python. One step at a
time, so a customer due two steps in one pass meets the cap with the first already counted.
Statements are driven by the pass's runs (status `planning`, a state that never outlives the
transaction) with lookups by unique keys: rows written in this transaction have no planner
statistics, and a join planned on none loops over every pair.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, and_, case, cast, func, insert, literal, or_, select, update

from bot.customers.models import Customer
from sop.audience import active_member
from sop.engine.document import SopDocument, Step, step_attachments
from sop.engine.models import SopItem, SopRun
from sop.outreach.config import OutreachConfig
from sop.outreach.fanout import send_batches
from sop.outreach.models import OutreachLedger, OutreachPlan, OutreachRecipient, OutreachSend
from sop.outreach.plan import HASH_MULTIPLIER, HASH_PRIME, enqueue_many, held_out_expression, source_salt

INSERT_CHUNK = 2000


def held_out(customer_id: int, salt: str, percent: int) -> bool:
    """The planner's draw (sop/outreach/plan.py held_out_expression), in Python."""
    if percent <= 0:
        return False
    return (customer_id + source_salt(salt)) * HASH_MULTIPLIER % HASH_PRIME % 100 < percent


def holdout_salt(code: str) -> str:
    return f"sop:{code}"  # the same customers are held out of every step of one SOP


def content_for(step: Step, store_code: str | None) -> dict:
    content = (step.overrides or {}).get(store_code or "") or step.content
    return {"text": content.text or "", "attachments": step_attachments(step, content)}


def source_of(item_id):
    """The outreach source of an item (an id or an id column)."""
    return f"sop:{item_id}" if isinstance(item_id, int) else literal("sop:") + cast(item_id, String)


def planning(document: SopDocument, step: Step) -> tuple:
    """The runs of this step being planned now."""
    return (SopRun.status == "planning", SopRun.code == document.code, SopRun.step_key == step.key)


def _recipient_rows(document: SopDocument, step: Step, now: dt.datetime, config: OutreachConfig):
    """SELECT of one recipient per (item, customer) with its status, for INSERT … SELECT."""
    member = active_member()

    def sends_since(since):
        return (select(func.count()).select_from(OutreachLedger).where(OutreachLedger.external_userid == SopRun.external_userid,
                                           OutreachLedger.at >= since, OutreachLedger.at <= now).scalar_subquery())

    over_cap = or_(sends_since(now - dt.timedelta(days=1)) >= config.cap_per_day,
                   sends_since(now - dt.timedelta(days=7)) >= config.cap_per_week)
    whens = [(Customer.status != "bound", "not_friend"),
             (held_out_expression(holdout_salt(document.code), document.holdout_percent), "held_out"),
             (over_cap, "over_cap")]
    if step.benefit:
        whens.append((member.c.id.is_(None), "no_member"))
    classified = (
        select(SopRun.item_id.label("item_id"), Customer.id.label("customer_id"),
               SopRun.external_userid.label("external_userid"), member.c.id.label("member_id"),
               SopRun.guide_userid.label("guide_userid"), Customer.store_code.label("store_code"),
               case(*whens, else_="planned").label("outcome"))
        .select_from(SopRun).join(Customer, Customer.external_userid == SopRun.external_userid)
        .outerjoin(member, and_(member.c.external_userid == Customer.external_userid, member.c.status == "active"))
        .where(*planning(document, step))
        .distinct().subquery("classified"))  # a customer twice in one item (two enrolments) is one recipient
    c = classified.c
    position = func.row_number().over(partition_by=[c.item_id, c.outcome], order_by=c.customer_id)
    chunk = case((c.outcome == "planned", (position - 1) // config.chunk_size), else_=None)
    status = case((c.outcome == "no_member", "skipped"), else_=c.outcome)
    reason = case((c.outcome.in_(("planned", "held_out")), None), else_=c.outcome)
    return select(source_of(c.item_id), c.customer_id, c.external_userid, c.member_id, c.guide_userid,
                  c.store_code, chunk, status, reason)


async def plan_items(session, document: SopDocument, step: Step, items: tuple, now: dt.datetime,
                     config: OutreachConfig) -> dict[str, int]:
    """Plan the group sends of this step's items matching `items` (WHERE clauses over sop_items)
    that are `sending` (their runs `planning`), queue their WeCom tasks in the caller's transaction (published when it
    commits), and mark their runs sent or skipped with the reason. Returns counts by outcome."""
    items = (*items, SopItem.code == document.code, SopItem.step_key == step.key, SopItem.status == "sending")
    rows = (await session.execute(select(SopItem.id, SopItem.store_code).where(*items))).all()
    if not rows:
        return {}
    title = f"{document.name}·{step.key}"[:100]
    coupon = step.benefit.coupon_template_code if step.benefit else None
    contents: dict[str | None, dict] = {}
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(OutreachPlan.__table__), [dict(  # Core executemany: no ORM per row
            source=source_of(item_id), title=title, content=contents.setdefault(store, content_for(step, store)),
            coupon_template_code=coupon, holdout_percent=document.holdout_percent, status="sending", planned_at=now,
            sync_runs=0) for item_id, store in rows[start:start + INSERT_CHUNK]])
    sources = select(source_of(SopItem.id)).where(*items)
    await session.execute(insert(OutreachRecipient).from_select(
        ["source", "customer_id", "external_userid", "member_id", "guide_userid", "store_code", "chunk", "status",
         "reason"], _recipient_rows(document, step, now, config)))
    planned = (OutreachRecipient.source.in_(sources), OutreachRecipient.status == "planned")
    await session.execute(insert(OutreachLedger).from_select(
        ["external_userid", "source", "at"],
        select(OutreachRecipient.external_userid, OutreachRecipient.source, literal(now, OutreachLedger.at.type))
        .where(*planned)))
    created = await session.execute(insert(OutreachSend).from_select(
        ["source", "guide_userid", "chunk", "recipients", "status", "task_status", "created_at"],
        select(OutreachRecipient.source, OutreachRecipient.guide_userid, OutreachRecipient.chunk, func.count(),
               literal("planned"), literal(0), literal(now, OutreachSend.created_at.type))
        .where(*planned).group_by(OutreachRecipient.source, OutreachRecipient.guide_userid, OutreachRecipient.chunk))
        .returning(OutreachSend.id, OutreachSend.source, OutreachSend.guide_userid, OutreachSend.chunk))
    by_source: dict[str, list[tuple]] = {}
    for send_id, source, guide, chunk in created.tuples():
        by_source.setdefault(source, []).append((send_id, guide, chunk))
    jobs = [job for source, sends in by_source.items() for job in send_batches(source, sends, config.sends_per_job)]
    if jobs:
        await enqueue_many(session, jobs)
    # Nobody to send to: the plan is done at once.
    await session.execute(update(OutreachPlan).where(
        OutreachPlan.source.in_(sources), OutreachPlan.status == "sending",
        ~OutreachPlan.source.in_(select(OutreachSend.source).where(OutreachSend.source.in_(sources))))
        .values(status="sent", sent_at=now).execution_options(synchronize_session=False))
    counts = dict((await session.execute(
        select(OutreachRecipient.status, func.count()).where(OutreachRecipient.source.in_(sources))
        .group_by(OutreachRecipient.status))).tuples().all())
    # Each run takes its recipient's outcome, joined on the recipients' unique key.
    recipient = OutreachRecipient
    await session.execute(
        update(SopRun).where(*planning(document, step), recipient.source == source_of(SopRun.item_id),
                             recipient.external_userid == SopRun.external_userid)
        .values(status=case((recipient.status == "planned", "sent"), else_="skipped"),
                reason=case((recipient.status == "planned", None), else_=func.coalesce(recipient.reason, recipient.status)),
                updated_at=now).execution_options(synchronize_session=False))
    await session.execute(update(SopRun).where(*planning(document, step)).values(  # the customer record is gone
        status="skipped", reason="no_customer", updated_at=now).execution_options(synchronize_session=False))
    await session.execute(update(SopItem).where(*items).values(status="pushed", acted_at=now, source=source_of(SopItem.id))
                          .execution_options(synchronize_session=False))
    return counts
