"""Which guide of a store takes the next customer: the rule, working hours, the daily add limit.

Eligible: active, not a backup, inside working hours, fewer adds today (China day) than the limit.
Among them the code's rule picks — round_robin (default), least_loaded (fewest adds today) or fixed
(the store's first guide while available). When nobody is eligible, a backup guide of the store
under its limit takes the customer (working hours do not apply: backups cover the gaps).

The adds are the customers' bindings, a feature above this one: the picker asks for their count by
name (`GUIDE_ADDS_SINCE`, which bot/customers/feature.py provides; see bot/wiring.py) rather than
importing the bindings. The count comes as SQL, so the store's guides and their load are still
read in one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.stores.hours import CHINA, china_day_start, is_within
from bot.stores.models import Guide
from bot.wiring import provided

# (guide userid column, since) -> SQL: the friends that guide added since then, handovers not counted.
GUIDE_ADDS_SINCE = "stores.guide_adds_since"
GuideAdds = Callable[[ColumnElement[str], dt.datetime], ColumnElement[int]]


def no_adds(userid: ColumnElement[str], since: dt.datetime) -> ColumnElement[int]:
    return literal(0)  # a process without the customers feature keeps no bindings


def guide_adds(services) -> GuideAdds:
    """How this process counts a guide's adds (the customers feature's bindings)."""
    return provided(services, GUIDE_ADDS_SINCE) or no_adds


@dataclass(frozen=True)
class GuidePick:
    guide: Guide
    reason: str  # rule | backup | fallback


def pick_by_rule(rule: str, eligible: list[Guide], counts: dict[str, int], turn: int) -> Guide:
    """Pure choice among eligible guides (ordered by id); `turn` is the store's round-robin counter."""
    if rule == "least_loaded":
        return min(eligible, key=lambda g: (counts.get(g.userid, 0), g.id))
    if rule == "fixed":
        return eligible[0]
    return eligible[turn % len(eligible)]


async def choose_guide(
    session: AsyncSession, kv, store_code: str, rule: str, now: dt.datetime, *,
    adds: GuideAdds, zone: ZoneInfo = CHINA, skip: Collection[str] = (),
) -> GuidePick | None:
    """The guide who takes the next customer at this store, or None when nobody can.

    `adds`: how guides' adds are counted (`guide_adds(services)`). `skip`: guides WeCom would not
    make a contact way for (their account is invalid).
    """
    # One query: the store's active guides with their adds today (the index on guide, start).
    rows = (await session.execute(
        select(Guide, adds(Guide.userid, china_day_start(now, zone))).where(Guide.store_code == store_code, Guide.status == "active").order_by(Guide.id)
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


async def guide_if_available(session: AsyncSession, userid: str, now: dt.datetime, *,
                             adds: GuideAdds, zone: ZoneInfo = CHINA) -> Guide | None:
    """The code's fallback (online) guide, when active and under the daily limit."""
    row = (await session.execute(
        select(Guide, adds(Guide.userid, china_day_start(now, zone)))
        .where(Guide.userid == userid, Guide.status == "active")
    )).first()
    if row is None:
        return None
    guide, count = row
    return guide if count < guide.daily_add_limit else None
