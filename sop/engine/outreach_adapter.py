"""Adapter onto the outreach engine for known lists of customers (the outreach planner only
takes an audience, and sop/audience.py has no "these customers" field): writes the same plans,
recipients, cap-ledger rows and sends that sop/outreach/plan.py writes, so fan-out, result sync,
conversions and the shared frequency cap work unchanged. A whole tick's group sends are planned
with a handful of set statements, whatever the number of guides."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, insert, select, update

from bot.customers.models import Customer
from bot.members.models import Member
from sop.outreach.config import outreach_config
from sop.outreach.fanout import SEND_PRIORITY, send_batches
from sop.outreach.models import OutreachLedger, OutreachPlan, OutreachRecipient, OutreachSend
from sop.outreach.plan import HASH_MULTIPLIER, HASH_PRIME, enqueue_many, source_salt

IN_CHUNK = 2000
INSERT_CHUNK = 2000


@dataclass
class GroupSend:
    source: str
    title: str
    guide: str
    external_userids: list[str]
    content: dict
    coupon_template_code: str | None
    holdout_percent: int = 0
    holdout_salt: str = ""  # held out the same customers for every step of one SOP


def held_out(customer_id: int, salt: str, percent: int) -> bool:
    """The outreach planner's draw (sop/outreach/plan.py held_out_expression), in Python."""
    if percent <= 0:
        return False
    return (customer_id + source_salt(salt)) * HASH_MULTIPLIER % HASH_PRIME % 100 < percent


async def _recent_sends(session, external_userids: list[str], now: dt.datetime) -> dict[str, list[int]]:
    """customer → [sends in the last day, in the last week] from the shared ledger."""
    day_ago, week_ago = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    counts: dict[str, list[int]] = {}
    for start in range(0, len(external_userids), IN_CHUNK):
        rows = await session.execute(
            select(OutreachLedger.external_userid, func.sum(case((OutreachLedger.at >= day_ago, 1), else_=0)),
                   func.count())
            .where(OutreachLedger.external_userid.in_(external_userids[start:start + IN_CHUNK]),
                   OutreachLedger.at >= week_ago, OutreachLedger.at <= now)
            .group_by(OutreachLedger.external_userid))
        counts.update({userid: [int(day or 0), int(week)] for userid, day, week in rows.all()})
    return counts


async def _customers(session, external_userids: list[str]) -> dict[str, tuple]:
    found = {}
    for start in range(0, len(external_userids), IN_CHUNK):
        rows = await session.execute(
            select(Customer.external_userid, Customer.id, Customer.store_code, Member.id)
            .outerjoin(Member, (Member.external_userid == Customer.external_userid) & (Member.status == "active"))
            .where(Customer.external_userid.in_(external_userids[start:start + IN_CHUNK])))
        found.update({userid: (customer_id, store, member_id) for userid, customer_id, store, member_id in rows.all()})
    return found


async def _insert_all(session, model, rows: list[dict]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(model), rows[start:start + INSERT_CHUNK])


async def plan_group_sends(session, sends: list[GroupSend], now: dt.datetime) -> dict[str, dict[str, str]]:
    """Plan these group sends and queue their WeCom tasks in the caller's transaction (published
    when it commits). Returns source → {customer → planned|held_out|over_cap|skipped}."""
    if not sends:
        return {}
    config = outreach_config()
    await _insert_all(session, OutreachPlan, [dict(
        source=send.source, title=send.title[:100], content=send.content, coupon_template_code=send.coupon_template_code,
        holdout_percent=send.holdout_percent, status="sending", planned_at=now, sync_runs=0) for send in sends])
    everyone = sorted({userid for send in sends for userid in send.external_userids})
    recent = await _recent_sends(session, everyone, now)
    customers = await _customers(session, everyone)
    outcome: dict[str, dict[str, str]] = {}
    recipients, ledger, chunks = [], [], []
    for send in sends:
        planned, statuses = 0, {}
        for userid in send.external_userids:
            if userid not in customers:
                statuses[userid] = "skipped"
                continue
            customer_id, store_code, member_id = customers[userid]
            day, week = recent.setdefault(userid, [0, 0])
            if held_out(customer_id, send.holdout_salt, send.holdout_percent):
                status, reason, chunk = "held_out", None, None
            elif day >= config.cap_per_day or week >= config.cap_per_week:
                status, reason, chunk = "over_cap", "over_cap", None
            elif send.coupon_template_code and member_id is None:
                status, reason, chunk = "skipped", "no_member", None
            else:
                status, reason, chunk = "planned", None, planned // config.chunk_size
                planned += 1
                recent[userid] = [day + 1, week + 1]  # two steps in one pass count against the cap too
                ledger.append(dict(external_userid=userid, source=send.source, at=now))
            statuses[userid] = status
            recipients.append(dict(source=send.source, customer_id=customer_id, external_userid=userid,
                                   member_id=member_id, guide_userid=send.guide, store_code=store_code, chunk=chunk,
                                   status=status, reason=reason))
        outcome[send.source] = statuses
        for chunk in range((planned + config.chunk_size - 1) // config.chunk_size):
            chunks.append(dict(source=send.source, guide_userid=send.guide, chunk=chunk, status="planned", task_status=0,
                               recipients=min(config.chunk_size, planned - chunk * config.chunk_size), created_at=now))
    await _insert_all(session, OutreachRecipient, recipients)
    await _insert_all(session, OutreachLedger, ledger)
    jobs, sent = [], set()
    for start in range(0, len(chunks), INSERT_CHUNK):
        rows = await session.execute(insert(OutreachSend).returning(
            OutreachSend.id, OutreachSend.source, OutreachSend.guide_userid, OutreachSend.chunk), chunks[start:start + INSERT_CHUNK])
        by_source: dict[str, list[tuple]] = {}
        for send_id, source, guide, chunk in rows.all():
            by_source.setdefault(source, []).append((send_id, guide, chunk))
        for source, created in by_source.items():
            sent.add(source)
            jobs.extend(send_batches(source, created, config.sends_per_job))
    if jobs:
        await enqueue_many(session, jobs, priority=SEND_PRIORITY)
    nothing = [send.source for send in sends if send.source not in sent]
    if nothing:  # nobody to send to: the plan is done at once
        await session.execute(update(OutreachPlan).where(OutreachPlan.source.in_(nothing))
                              .values(status="sent", sent_at=now))
    return outcome
