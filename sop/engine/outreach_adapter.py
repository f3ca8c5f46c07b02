"""Adapter onto the outreach engine for a known list of customers (the outreach planner only
takes an audience, and sop/audience.py has no "these customers" field): writes the same plan,
recipients, cap-ledger rows and sends that sop/outreach/plan.py writes, so fan-out, result sync,
conversions and the shared frequency cap work unchanged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, insert, select

from bot.customers.models import Customer
from bot.members.models import Member
from sop.outreach.config import outreach_config
from sop.outreach.fanout import SEND_PRIORITY, send_batches
from sop.outreach.models import OutreachLedger, OutreachPlan, OutreachRecipient, OutreachSend
from sop.outreach.plan import enqueue_many


async def over_cap(session, external_userids: list[str], now: dt.datetime) -> set[str]:
    config = outreach_config()
    day_ago, week_ago = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    rows = await session.execute(
        select(OutreachLedger.external_userid, func.count(),
               func.sum(case((OutreachLedger.at >= day_ago, 1), else_=0)))
        .where(OutreachLedger.external_userid.in_(external_userids), OutreachLedger.at >= week_ago,
               OutreachLedger.at <= now)
        .group_by(OutreachLedger.external_userid))
    return {userid for userid, week, day in rows.tuples() if (day or 0) >= config.cap_per_day
            or week >= config.cap_per_week}


async def plan_group_send(session, *, source: str, title: str, guide: str, external_userids: list[str],
                          content: dict, coupon_template_code: str | None, now: dt.datetime) -> dict[str, str]:
    """Plan one guide's group send to these customers and queue its WeCom task(s) in the caller's
    transaction (published when it commits). Returns customer → status (planned|over_cap|skipped)."""
    config = outreach_config()
    session.add(OutreachPlan(source=source, title=title[:100], content=content,
                             coupon_template_code=coupon_template_code, status="sending", planned_at=now))
    capped = await over_cap(session, external_userids, now)
    rows = (await session.execute(
        select(Customer.id, Customer.external_userid, Customer.store_code, Member.id)
        .outerjoin(Member, (Member.external_userid == Customer.external_userid) & (Member.status == "active"))
        .where(Customer.external_userid.in_(external_userids)).order_by(Customer.id))).all()
    outcome, recipients, planned = {}, [], 0
    for customer_id, external_userid, store_code, member_id in rows:
        if external_userid in capped:
            status, reason, chunk = "over_cap", "over_cap", None
        elif coupon_template_code and member_id is None:
            status, reason, chunk = "skipped", "no_member", None
        else:
            status, reason, chunk = "planned", None, planned // config.chunk_size
            planned += 1
        outcome[external_userid] = status
        recipients.append(dict(source=source, customer_id=customer_id, external_userid=external_userid,
                               member_id=member_id, guide_userid=guide, store_code=store_code, chunk=chunk,
                               status=status, reason=reason))
    if recipients:
        await session.execute(insert(OutreachRecipient), recipients)
    chosen = [row["external_userid"] for row in recipients if row["status"] == "planned"]
    if chosen:
        await session.execute(insert(OutreachLedger), [dict(external_userid=userid, source=source, at=now)
                                                      for userid in chosen])
    chunks = (planned + config.chunk_size - 1) // config.chunk_size
    sends = []
    for chunk in range(chunks):
        send = OutreachSend(source=source, guide_userid=guide, chunk=chunk, status="planned",
                            recipients=min(config.chunk_size, planned - chunk * config.chunk_size))
        session.add(send)
        await session.flush()
        sends.append((send.id, guide, chunk))
    if sends:
        await enqueue_many(session, send_batches(source, sends, config.sends_per_job), priority=SEND_PRIORITY)
    else:
        await session.execute(OutreachPlan.__table__.update().where(OutreachPlan.source == source)
                              .values(status="sent", sent_at=now))
    return outcome
