"""Funnel per code / channel / store / guide, and the guides' leaderboard (new friends per day/week).

Store managers see only their stores' rows. Scans happen before a store is known, so for a store
manager (and in the store and guide views) conversion is adds / offers (locate or choice that
showed that store or guide); in the code and channel views it is adds / scans.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, literal, select, text, union_all

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.config import corp_zone
from bot.customers.binding import LOSSES
from bot.customers.models import CustomerBinding
from bot.storage import utcnow
from bot.stores.assign import ADD_SOURCES
from bot.stores.hours import china_day_start
from bot.stores.models import FunnelEvent, Guide

ROLES = [Role.HQ_ADMIN, Role.STORE_MANAGER]
# Any date is accepted; the report covers only days the service can have data for (and that
# datetime can represent once shifted to UTC: 0001-01-01 and 9999-12-31 cannot).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)
MAX_DAYS = 367  # since…until, both inclusive
GROUP_COLUMNS = {"code": FunnelEvent.qrcode_code, "channel": FunnelEvent.channel_code,
                 "store": FunnelEvent.store_code, "guide": FunnelEvent.guide_userid}


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: dt.date | None = Field(None, description="first day (China time); default: 30 days ago")
    until: dt.date | None = Field(None, description="last day, inclusive; default: today")

    def bounds(self, default_days: int) -> tuple[dt.datetime, dt.datetime]:
        today = utcnow().astimezone(corp_zone()).date()
        # Rules between the two fields, which a schema cannot state: 422 (the query itself is valid).
        if self.since and self.until and self.since > self.until:
            raise ApiError(422, "invalid_request", "since is after until", [{"field": "since", "problem": "after until"}])
        if self.since and self.until and (self.until - self.since).days >= MAX_DAYS:
            raise ApiError(422, "invalid_request", f"at most {MAX_DAYS} days at once",
                           [{"field": "until", "problem": f"more than {MAX_DAYS} days after since"}])
        until = min(max(self.until or today, FIRST_DAY), LAST_DAY)
        since = min(max(self.since or until - dt.timedelta(days=default_days - 1), FIRST_DAY), LAST_DAY)
        start = dt.datetime.combine(since, dt.time(), corp_zone()).astimezone(dt.UTC)
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), corp_zone()).astimezone(dt.UTC)
        return start, end


class FunnelQuery(Period):
    by: Literal["code", "channel", "store", "guide"] = "code"


class FunnelRow(BaseModel):
    key: str | None
    scans: int
    located: int
    chosen: int
    adds: int
    deletes: int
    net_friends: int
    conversion: float | None = Field(description="adds / scans (code, channel) or adds / offers (store, guide)")


class FunnelReport(BaseModel):
    by: str
    since: dt.datetime
    until: dt.datetime
    rows: list[FunnelRow]


@api.route("GET", "/api/v1/stats/funnel", summary="Scans → located → adds → net friends, grouped",
           roles=ROLES, query=FunnelQuery, response=FunnelReport)
async def funnel(call: ApiCall) -> FunnelReport:
    q: FunnelQuery = call.query
    start, end = q.bounds(30)
    column = GROUP_COLUMNS[q.by]
    statement = (select(column, FunnelEvent.step, func.count())
                 .where(FunnelEvent.at >= start, FunnelEvent.at < end).group_by(column, FunnelEvent.step))
    manager = call.principal.role == Role.STORE_MANAGER
    if manager:
        statement = statement.where(FunnelEvent.store_code.in_(call.principal.store_codes))
    async with call.services.db.session() as session:
        counts: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for key, step, count in (await session.execute(statement)).all():
            counts[key][step] += count
    rows = []
    for key, steps in counts.items():
        adds, offers = steps["add"], steps["locate"] + steps["choose"]
        base = offers if manager or q.by in ("store", "guide") else steps["scan"]
        rows.append(FunnelRow(
            key=key, scans=steps["scan"], located=steps["locate"], chosen=steps["choose"], adds=adds,
            deletes=steps["delete"], net_friends=adds - steps["delete"],
            conversion=round(adds / base, 4) if base else None,
        ))
    rows.sort(key=lambda r: (-r.adds, -r.scans, r.key or ""))
    return FunnelReport(by=q.by, since=start, until=end, rows=rows)


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


def period_start(when: dt.datetime, period: str) -> dt.date:
    day = china_day_start(when, corp_zone()).astimezone(corp_zone()).date()
    return day - dt.timedelta(days=day.weekday()) if period == "week" else day


@api.route("GET", "/api/v1/stats/guides", summary="Guides' leaderboard: new friends per day or week",
           roles=ROLES, query=LeaderboardQuery, response=Leaderboard)
async def guide_leaderboard(call: ApiCall) -> Leaderboard:
    q: LeaderboardQuery = call.query
    start, end = q.bounds(7 if q.period == "day" else 56)
    dialect = call.services.db.engine.dialect.name
    zone = corp_zone()
    # Tallied and ranked in the database: at a million customers a month's bindings are too many
    # to fetch, so only each period's leaders come back. One row per add and per loss, one GROUP BY.
    added = (select(period_of(CustomerBinding.started_at, q.period, start, end, zone, dialect).label("period"),
                    CustomerBinding.guide_userid, CustomerBinding.store_code, literal(1).label("added"))
             .where(CustomerBinding.started_at >= start, CustomerBinding.started_at < end,
                    CustomerBinding.source.in_(ADD_SOURCES)))
    lost = (select(period_of(CustomerBinding.ended_at, q.period, start, end, zone, dialect).label("period"),
                   CustomerBinding.guide_userid, CustomerBinding.store_code, literal(0).label("added"))
            .where(CustomerBinding.ended_at >= start, CustomerBinding.ended_at < end,
                   CustomerBinding.end_reason.in_(LOSSES)))
    if call.principal.role == Role.STORE_MANAGER:
        added = added.where(CustomerBinding.store_code.in_(call.principal.store_codes))
        lost = lost.where(CustomerBinding.store_code.in_(call.principal.store_codes))
    if q.store_code:
        added = added.where(CustomerBinding.store_code == q.store_code)
        lost = lost.where(CustomerBinding.store_code == q.store_code)
    events = union_all(added, lost).subquery()
    board = (select(events.c.period, events.c.guide_userid,
                    # The store of the guide's adds, else of their losses.
                    func.coalesce(func.max(case((events.c.added == 1, events.c.store_code))),
                                  func.max(events.c.store_code)).label("store_code"),
                    func.sum(events.c.added).label("new"), func.sum(1 - events.c.added).label("lost"))
             .group_by(events.c.period, events.c.guide_userid)).subquery()
    # Ties: fewer losses first, then userid in code-point order (as Python sorts).
    userid = board.c.guide_userid.collate("C") if dialect == "postgresql" else board.c.guide_userid
    ranked = select(board, func.row_number().over(
        partition_by=board.c.period, order_by=(board.c.new.desc(), board.c.lost, userid)).label("rank")).subquery()
    leaders = (select(ranked.c.period, ranked.c.rank, ranked.c.guide_userid, Guide.name, ranked.c.store_code,
                      ranked.c.new, ranked.c.lost)
               .outerjoin(Guide, Guide.userid == ranked.c.guide_userid).where(ranked.c.rank <= q.top)
               .order_by(ranked.c.period.desc(), ranked.c.rank))
    async with call.services.db.session() as session, session.begin():
        if dialect == "postgresql":  # a month of a large corp's adds is sorted in memory, not on disk
            await session.execute(text("SET LOCAL work_mem = '64MB'"))
        found = (await session.execute(leaders)).all()
    return Leaderboard(period=q.period, rows=[
        LeaderRow(period_start=as_date(day), rank=rank, guide_userid=userid, guide_name=name or userid,
                  store_code=store_code, new_friends=new, lost=gone)
        for day, rank, userid, name, store_code, new, gone in found])


def as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def period_of(column, period: str, start: dt.datetime, end: dt.datetime, zone, dialect: str):
    """SQL: the local date (in `zone`) starting the day or the week (Monday) that `column` falls in.

    PostgreSQL converts with its own time-zone rules. Elsewhere (SQLite), a zone whose UTC offset
    does not change over the report shifts by that offset; one that does (summer time) compares
    with the boundaries of each period, computed here."""
    if dialect == "postgresql":
        local = func.timezone(zone.key, column)
        return func.date(func.date_trunc("week", local) if period == "week" else local)
    step = dt.timedelta(days=7 if period == "week" else 1)
    days, day = [], period_start(start, period)
    while dt.datetime.combine(day, dt.time(), zone) < end:
        days.append(day)
        day += step
    offsets = {dt.datetime.combine(d, dt.time(), zone).utcoffset() for d in [*days, day]}
    if len(offsets) == 1:
        shift = f"{offsets.pop() // dt.timedelta(minutes=1):+d} minutes"
        return func.date(column, shift, "-6 days", "weekday 1") if period == "week" else func.date(column, shift)
    return case(*[(column < dt.datetime.combine(d + step, dt.time(), zone).astimezone(dt.UTC), d.isoformat())
                  for d in days], else_=None) if days else literal(None)
