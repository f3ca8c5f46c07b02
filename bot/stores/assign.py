"""Which guide of a store takes the next customer: the rule, working hours, the daily add limit.

Eligible: active, not a backup, inside working hours, fewer adds today (China day) than the limit.
Among them the code's rule picks — round_robin (default), least_loaded (fewest adds today) or fixed
(the store's first guide while available). When nobody is eligible, a backup guide of the store
under its limit takes the customer (working hours do not apply: backups cover the gaps).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import CustomerBinding
from bot.stores.hours import CHINA, china_day_start, is_within
from bot.stores.models import Guide

# A binding from these sources is a friend the guide added (handovers do not use up the limit).
ADD_SOURCES = ("scan", "direct")


@dataclass(frozen=True)
class GuidePick:
    guide: Guide
    reason: str  # rule | backup | fallback


async def adds_today(session: AsyncSession, userids: list[str], now: dt.datetime,
                     zone: ZoneInfo = CHINA) -> dict[str, int]:
    """New friends per guide since midnight corp time."""
    if not userids:
        return {}
    rows = await session.execute(
        select(CustomerBinding.guide_userid, func.count())
        .where(
            CustomerBinding.guide_userid.in_(userids),
            CustomerBinding.started_at >= china_day_start(now, zone),
            CustomerBinding.source.in_(ADD_SOURCES),
        )
        .group_by(CustomerBinding.guide_userid)
    )
    counts = {userid: 0 for userid in userids}
    counts.update({userid: count for userid, count in rows.all()})
    return counts


def pick_by_rule(rule: str, eligible: list[Guide], counts: dict[str, int], turn: int) -> Guide:
    """Pure choice among eligible guides (ordered by id); `turn` is the store's round-robin counter."""
    if rule == "least_loaded":
        return min(eligible, key=lambda g: (counts.get(g.userid, 0), g.id))
    if rule == "fixed":
        return eligible[0]
    return eligible[turn % len(eligible)]


async def choose_guide(
    session: AsyncSession, kv, store_code: str, rule: str, now: dt.datetime, *,
    zone: ZoneInfo = CHINA, skip: Collection[str] = (),
) -> GuidePick | None:
    """The guide who takes the next customer at this store, or None when nobody can.

    `skip`: guides WeCom would not make a contact way for (their account is invalid).
    """
    # One query: the store's active guides with their adds today (the index on guide, start).
    adds = (
        select(func.count())
        .where(CustomerBinding.guide_userid == Guide.userid,
               CustomerBinding.started_at >= china_day_start(now, zone), CustomerBinding.source.in_(ADD_SOURCES))
        .correlate(Guide).scalar_subquery()
    )
    rows = (await session.execute(
        select(Guide, adds).where(Guide.store_code == store_code, Guide.status == "active").order_by(Guide.id)
    )).all()
    if not rows:
        return None
    guides = [guide for guide, _ in rows if guide.userid not in skip]
    counts = {guide.userid: count for guide, count in rows}
    under_limit = [g for g in guides if counts[g.userid] < g.daily_add_limit]
    eligible = [g for g in under_limit if not g.is_backup and is_within(g.working_hours, now, zone)]
    if eligible:
        turn = 0
        if rule == "round_robin" and len(eligible) > 1:
            # A shared counter, so several web processes still take turns fairly.
            turn = await kv.incr(f"guide_turn:{store_code}") - 1
        return GuidePick(pick_by_rule(rule, eligible, counts, turn), "rule")
    backups = [g for g in under_limit if g.is_backup]
    if backups:
        return GuidePick(min(backups, key=lambda g: (counts[g.userid], g.id)), "backup")
    return None


async def guide_if_available(session: AsyncSession, userid: str, now: dt.datetime,
                             zone: ZoneInfo = CHINA) -> Guide | None:
    """The code's fallback (online) guide, when active and under the daily limit."""
    guide = await session.scalar(select(Guide).where(Guide.userid == userid, Guide.status == "active"))
    if guide is None:
        return None
    counts = await adds_today(session, [userid], now, zone)
    return guide if counts[userid] < guide.daily_add_limit else None
