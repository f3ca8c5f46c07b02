"""What a source achieved: counts by status, conversions with uplift over the held-out, per store
and per guide. An order counts when its member paid within `attribution_days` of receiving the
message (held-out customers: of the launch). All aggregates are computed in SQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Interval, and_, case, distinct, func, literal, select

from bot.members.models import Coupon, Order
from sop.outreach.models import OutreachRecipient, OutreachSend

STATUSES = ("held_out", "planned", "pending", "sent", "not_friend", "over_cap", "failed", "skipped", "cancelled")


async def status_counts(session, source: str) -> dict[str, int]:
    rows = await session.execute(select(OutreachRecipient.status, func.count()).where(
        OutreachRecipient.source == source).group_by(OutreachRecipient.status))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: count for status, count in rows.tuples()})
    return counts


async def task_counts(session, source: str) -> tuple[int, int]:
    """(tasks created, guides who confirmed all of theirs)."""
    tasks = await session.scalar(select(func.count()).select_from(OutreachSend).where(
        OutreachSend.source == source, OutreachSend.msgid.is_not(None)))
    per_guide = select(OutreachSend.guide_userid).where(OutreachSend.source == source,
                                                        OutreachSend.msgid.is_not(None)).group_by(
        OutreachSend.guide_userid).having(func.min(OutreachSend.task_status) == 2).subquery()
    confirmed = await session.scalar(select(func.count()).select_from(per_guide))
    return tasks, confirmed


async def conversions(session, source: str, launched_at: dt.datetime | None, days: int,
                      counts: dict[str, int]) -> dict:
    empty = {"orders": 0, "revenue_fen": 0, "coupons_redeemed": 0, "conversion_rate": None,
             "holdout_conversion_rate": None, "uplift": None}
    if launched_at is None:
        return empty
    if session.get_bind().dialect.name == "sqlite":
        # SQLite cannot add an interval to a column: compare in Python over the (small) joined rows.
        return await _conversions_in_python(session, source, launched_at, days, counts)
    sent = _attributed_orders_pg(source, launched_at, days, "sent").subquery()
    held = _attributed_orders_pg(source, launched_at, days, "held_out").subquery()
    orders, revenue, buyers = (await session.execute(select(
        func.count(sent.c.id), func.coalesce(func.sum(sent.c.amount_fen), 0),
        func.count(distinct(sent.c.external_userid))))).one()
    held_buyers = await session.scalar(select(func.count(distinct(held.c.external_userid))))
    redeemed = await _coupons_redeemed(session, source)
    return _rates(orders, revenue, redeemed, buyers, held_buyers, counts)


def _attributed_orders_pg(source: str, launched_at: dt.datetime, days: int, group: str):
    recipient = OutreachRecipient
    window = dt.timedelta(days=days)
    if group == "sent":
        start, end = recipient.sent_at, recipient.sent_at + literal(window, Interval())
    else:
        start, end = launched_at, launched_at + window
    return (
        select(recipient.external_userid, Order.id, Order.amount_fen)
        .join(Order, and_(Order.member_id == recipient.member_id, Order.status == "paid"))
        .where(recipient.source == source, recipient.status == group, Order.paid_at >= start, Order.paid_at <= end)
    )


async def _conversions_in_python(session, source, launched_at, days, counts) -> dict:
    window = dt.timedelta(days=days)
    rows = (await session.execute(
        select(OutreachRecipient.external_userid, OutreachRecipient.status, OutreachRecipient.sent_at,
               Order.paid_at, Order.amount_fen)
        .join(Order, and_(Order.member_id == OutreachRecipient.member_id, Order.status == "paid"))
        .where(OutreachRecipient.source == source, OutreachRecipient.status.in_(("sent", "held_out"))))).all()
    orders = revenue = 0
    buyers, held_buyers = set(), set()
    for external_userid, status, sent_at, paid_at, amount in rows:
        start = sent_at if status == "sent" else launched_at
        if start is None or not start <= paid_at <= start + window:
            continue
        if status == "sent":
            orders, revenue = orders + 1, revenue + amount
            buyers.add(external_userid)
        else:
            held_buyers.add(external_userid)
    redeemed = await _coupons_redeemed(session, source)
    return _rates(orders, revenue, redeemed, len(buyers), len(held_buyers), counts)


async def _coupons_redeemed(session, source: str) -> int:
    return await session.scalar(select(func.count()).select_from(Coupon).where(
        Coupon.issue_key.like(f"{source}:%"), Coupon.status == "redeemed"))


def _rates(orders, revenue, redeemed, buyers, held_buyers, counts) -> dict:
    rate = buyers / counts["sent"] if counts["sent"] else None
    held_rate = held_buyers / counts["held_out"] if counts["held_out"] else None
    return {"orders": orders, "revenue_fen": int(revenue), "coupons_redeemed": redeemed,
            "conversion_rate": None if rate is None else round(rate, 4),
            "holdout_conversion_rate": None if held_rate is None else round(held_rate, 4),
            "uplift": None if rate is None or held_rate is None else round(rate - held_rate, 4)}


async def breakdown(session, source: str, column) -> list[dict]:
    """Per store or per guide: targeted, sent, pending, not_friend, over_cap, failed."""
    recipient = OutreachRecipient

    def count(*statuses):
        return func.sum(case((recipient.status.in_(statuses), 1), else_=0))

    rows = await session.execute(
        select(column, count("planned", "pending", "sent", "not_friend", "over_cap", "failed", "skipped",
                             "cancelled"), count("sent"), count("pending"), count("not_friend"), count("over_cap"),
               count("failed"), count("held_out"))
        .where(recipient.source == source).group_by(column).order_by(column))
    return [dict(zip(("code", "targeted", "sent", "pending", "not_friend", "over_cap", "failed", "held_out"),
                     (row[0], *(int(v or 0) for v in row[1:])), strict=True)) for row in rows]
