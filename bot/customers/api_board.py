"""The guides' leaderboard, the PK board: new friends and losses per guide, per day or week.

Counted from the customers' bindings (bot/customers/board.py), so it is the customers feature's
route; its query shares the statistics' `Period` and roles (bot/stores/stats.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func, select, text, union_all

from bot.api.auth import Role
from bot.api.spec import ApiCall, api
from bot.config import corp_zone
from bot.customers.board import (
    as_date,
    binding_events,
    day_start,
    last_settled_day,
    ranked_tallies,
    tallied_events,
    tallied_weeks,
    tally_missing_days,
)
from bot.storage import utcnow
from bot.stores.models import Guide
from bot.stores.stats import ROLES, Period


class LeaderboardQuery(Period):
    period: Literal["day", "week"] = "day"
    store_code: str | None = None
    top: int = Field(100, ge=1, le=10_000, description="ranks kept per day or week: the board's leaders")


class LeaderRow(BaseModel):
    period_start: dt.date
    rank: int
    guide_userid: str
    guide_name: str
    store_code: str | None
    new_friends: int
    lost: int


class Leaderboard(BaseModel):
    period: str
    rows: list[LeaderRow]


@api.route("GET", "/api/v1/stats/guides", summary="Guides' leaderboard: new friends per day or week",
           roles=ROLES, query=LeaderboardQuery, response=Leaderboard)
async def guide_leaderboard(call: ApiCall) -> Leaderboard:
    q: LeaderboardQuery = call.query
    start, end = q.bounds(7 if q.period == "day" else 56)
    dialect = call.services.db.engine.dialect.name
    zone = corp_zone()
    stores = None
    if call.principal.role == Role.STORE_MANAGER:
        stores = list(call.principal.store_codes)
    if q.store_code:
        stores = [q.store_code] if stores is None or q.store_code in stores else []
    # Tallied and ranked in the database: settled days from their tallies (bot/customers/board.py),
    # today and yesterday live from the bindings; only each period's leaders come back.
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date() - dt.timedelta(days=1)
    settled = min(last, last_settled_day(utcnow().astimezone(zone).date()))
    found = []
    async with call.services.db.session() as session, session.begin():
        if first <= settled:  # days nobody asked for yet, and the nightly job has not reached
            await tally_missing_days(session, first, settled, zone, dialect)
        # The unfiltered board reads settled days and complete weeks ranked from their per-guide
        # tallies; the rest (a store's board, a part week, today and yesterday) is summed here.
        ranked = []
        if stores is None and first <= settled:
            ranked = ([first + dt.timedelta(days=n) for n in range((settled - first).days + 1)] if q.period == "day"
                      else await tallied_weeks(session, first, settled, zone))
        parts = []
        if first <= settled and not (q.period == "day" and ranked):
            parts.append(tallied_events(q.period, first, settled, zone, dialect, stores, skip=ranked))
        live_start = max(start, day_start(settled + dt.timedelta(days=1), zone))
        if live_start < end:
            parts += binding_events(q.period, live_start, end, zone, dialect, stores)
        if parts:
            if dialect == "postgresql":  # several thousand groups are sorted in memory, not on disk
                await session.execute(text("SET LOCAL work_mem = '64MB'"))
            found += (await session.execute(board_leaders(parts, q.top, dialect))).all()
        if ranked:
            found += (await session.execute(ranked_tallies(q.period, ranked, zone, dialect, q.top))).all()
    found.sort(key=lambda row: (-as_date(row[0]).toordinal(), row[1]))  # newest period first, by rank
    return Leaderboard(period=q.period, rows=[
        LeaderRow(period_start=as_date(day), rank=rank, guide_userid=userid, guide_name=name or userid,
                  store_code=store_code, new_friends=new, lost=gone)
        for day, rank, userid, name, store_code, new, gone in found])


def board_leaders(parts: list, top: int, dialect: str):
    """SQL: each period's `top` leaders of the adds and losses in `parts` (tallied or live rows)."""
    events = union_all(*parts).subquery()
    board = (select(events.c.period, events.c.guide_userid,
                    # The store of the guide's adds, else of their losses.
                    func.coalesce(func.max(case((events.c.added > 0, events.c.store_code))),
                                  func.max(events.c.store_code)).label("store_code"),
                    func.sum(events.c.added).label("new"), func.sum(events.c.lost).label("lost"))
             .group_by(events.c.period, events.c.guide_userid)).cte("board")
    # Only guides who can make a period's top are sorted: those with at least the adds of the
    # `top`-th guide (fewer than `top` guides have more), ties included. A month is ~70,000
    # guide-days, of which a few thousand reach that.
    counts = (select(board.c.period, board.c.new, func.count().label("guides"))
              .group_by(board.c.period, board.c.new)).subquery()
    ahead = func.sum(counts.c.guides).over(partition_by=counts.c.period, order_by=counts.c.new.desc()) - counts.c.guides
    steps = select(counts.c.period, counts.c.new, ahead.label("ahead")).subquery()
    least = (select(steps.c.period, func.min(steps.c.new).label("new")).where(steps.c.ahead < top)
             .group_by(steps.c.period)).subquery()
    contenders = (select(board).join(least, and_(least.c.period == board.c.period, board.c.new >= least.c.new))
                  ).subquery()
    # Ties: fewer losses first, then userid in code-point order (as Python sorts).
    userid = contenders.c.guide_userid.collate("C") if dialect == "postgresql" else contenders.c.guide_userid
    ranked = select(contenders, func.row_number().over(
        partition_by=contenders.c.period, order_by=(contenders.c.new.desc(), contenders.c.lost, userid)
    ).label("rank")).subquery()
    return (select(ranked.c.period, ranked.c.rank, ranked.c.guide_userid, Guide.name, ranked.c.store_code,
                      ranked.c.new, ranked.c.lost)
               .outerjoin(Guide, Guide.userid == ranked.c.guide_userid).where(ranked.c.rank <= top)
               .order_by(ranked.c.period.desc(), ranked.c.rank))
