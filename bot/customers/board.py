"""The PK board's settled days, tallied once: adds and losses per (day, guide, store).

A day is *settled* once the day after it has also ended (SETTLED_AFTER_DAYS = 2): today and
yesterday are always counted live from the bindings, older days from `guide_board_tallies`.
Why two days: a binding's start or end is stamped with the event's time, and WeCom retries or a
late sync can write it hours after the fact; the live window absorbs anything up to a day late.
Rule: an add or loss written after its day settled (and was tallied) is not on the board.

Days are tallied by a nightly job (`BOARD_TALLY_CRON`) and, for any settled day a request covers
that is still missing, by the request itself (`tally_missing_days`), so the board never depends on
the job having run. Tallies are kept per corp time zone: changing TIMEZONE tallies anew. Each row
keeps the binding's store, so a guide who moves stores keeps old days under the old store, and a
store filter or a store manager's scope applies to tallies as to bindings.

The board ranks guides by their customers' adds and losses, so it lives with the bindings, in the
customers feature (it was first written in the stores feature: its job kind, cron name and
logger keep the names they had there, as the jobs table and the cron schedule know them).
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, case, cast, column, func, literal, select, true, union_all, values
from sqlalchemy.dialects import postgresql, sqlite

from bot.config import corp_zone
from bot.customers.binding import ADD_SOURCES, LOSSES
from bot.customers.board_models import GuideBoardDay, GuideBoardGuideDay, GuideBoardGuideWeek, GuideBoardTally
from bot.customers.models import CustomerBinding
from bot.jobs import JobContext, Priority, tasks
from bot.jobs.cron import cron
from bot.storage import utcnow
from bot.stores.hours import china_day_start
from bot.stores.models import Guide

log = logging.getLogger("bot.stores")

SETTLED_AFTER_DAYS = 2
NIGHTLY_DAYS = 62  # the nightly job keeps this many settled days ready (the board's default ranges: 7 / 56)
BOARD_TALLY_JOB = "stores.board_tally"
BOARD_TALLY_CRON = cron("stores.board-tally", "20 0 * * *", BOARD_TALLY_JOB)  # just after midnight, corp time


def last_settled_day(today: dt.date) -> dt.date:
    return today - dt.timedelta(days=SETTLED_AFTER_DAYS)


def day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def period_start(when: dt.datetime, period: str) -> dt.date:
    day = china_day_start(when, corp_zone()).astimezone(corp_zone()).date()
    return day - dt.timedelta(days=day.weekday()) if period == "week" else day


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


def tallied_period(period: str, dialect: str):
    """SQL: the day or the week (Monday) of a tally's day."""
    day = GuideBoardTally.day
    if period == "day":
        return day
    if dialect == "postgresql":
        return day - (cast(func.extract("isodow", day), Integer) - 1)
    return func.date(day, "-6 days", "weekday 1")


def binding_events(period: str, start: dt.datetime, end: dt.datetime, zone: ZoneInfo, dialect: str,
                   stores: list[str] | None = None):
    """Adds and losses of bindings between start and end: (period, guide_userid, store_code,
    added, lost), one row per add (1, 0) and per loss (0, 1)."""
    added = (select(period_of(CustomerBinding.started_at, period, start, end, zone, dialect).label("period"),
                    CustomerBinding.guide_userid, CustomerBinding.store_code,
                    literal(1).label("added"), literal(0).label("lost"))
             .where(CustomerBinding.started_at >= start, CustomerBinding.started_at < end,
                    CustomerBinding.source.in_(ADD_SOURCES)))
    lost = (select(period_of(CustomerBinding.ended_at, period, start, end, zone, dialect).label("period"),
                   CustomerBinding.guide_userid, CustomerBinding.store_code,
                   literal(0).label("added"), literal(1).label("lost"))
            .where(CustomerBinding.ended_at >= start, CustomerBinding.ended_at < end,
                   CustomerBinding.end_reason.in_(LOSSES)))
    if stores is not None:
        added = added.where(CustomerBinding.store_code.in_(stores))
        lost = lost.where(CustomerBinding.store_code.in_(stores))
    return added, lost


def tallied_events(period: str, first: dt.date, last: dt.date, zone: ZoneInfo, dialect: str,
                   stores: list[str] | None = None, skip: list[dt.date] = ()):
    """The same columns as binding_events, from the tallies of settled days first…last, but for
    the periods in `skip` (read from their own tallies)."""
    tally = GuideBoardTally
    statement = (select(tallied_period(period, dialect).label("period"), tally.guide_userid, tally.store_code,
                        tally.added, tally.lost)
                 .where(tally.zone == zone.key, tally.day >= first, tally.day <= last))
    if skip:
        skipped = list(skip) if dialect == "postgresql" else [day.isoformat() for day in skip]
        statement = statement.where(tallied_period(period, dialect).notin_(skipped))
    return statement.where(tally.store_code.in_(stores)) if stores is not None else statement


async def tally_missing_days(session, first: dt.date, last: dt.date, zone: ZoneInfo, dialect: str) -> int:
    """Tally the days first…last (settled ones only) not yet tallied in `zone`; how many were new.

    Each day is claimed by inserting its marker; a concurrent caller's claim waits for this
    transaction and then finds the day taken, so no day is tallied twice."""
    last = min(last, last_settled_day(utcnow().astimezone(zone).date()))
    if first > last:
        return 0
    done = set((await session.execute(select(GuideBoardDay.day).where(
        GuideBoardDay.zone == zone.key, GuideBoardDay.day >= first, GuideBoardDay.day <= last))).scalars())
    missing = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    missing = [day for day in missing if day not in done]
    if not missing:
        return 0
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    claimed = sorted(as_date(day) for day in (await session.execute(
        insert(GuideBoardDay).values([{"zone": zone.key, "day": day, "tallied_at": utcnow()} for day in missing])
        .on_conflict_do_nothing(index_elements=["zone", "day"]).returning(GuideBoardDay.day))).scalars())
    if not claimed:
        return 0
    start, end = day_start(claimed[0], zone), day_start(claimed[-1] + dt.timedelta(days=1), zone)
    events = union_all(*binding_events("day", start, end, zone, dialect)).subquery()
    wanted = claimed if dialect == "postgresql" else [day.isoformat() for day in claimed]
    tallies = (select(literal(zone.key), events.c.period, events.c.guide_userid, events.c.store_code,
                      func.sum(events.c.added), func.sum(events.c.lost))
               .where(events.c.period.in_(wanted))
               .group_by(events.c.period, events.c.guide_userid, events.c.store_code))
    await session.execute(insert(GuideBoardTally).from_select(
        ["zone", "day", "guide_userid", "store_code", "added", "lost"], tallies))
    tally = GuideBoardTally  # the same days summed over stores, for the unfiltered board
    await session.execute(insert(GuideBoardGuideDay).from_select(
        ["zone", "day", "guide_userid", "add_store", "any_store", "added", "lost"],
        select(tally.zone, tally.day, tally.guide_userid, func.max(case((tally.added > 0, tally.store_code))),
               func.max(tally.store_code), func.sum(tally.added), func.sum(tally.lost))
        .where(tally.zone == zone.key, tally.day.in_(claimed))
        .group_by(tally.zone, tally.day, tally.guide_userid)))
    for monday in sorted({monday_of(day) for day in claimed}):  # weeks this pass completed
        sunday = monday + dt.timedelta(days=6)
        if await session.scalar(select(func.count()).where(
                GuideBoardDay.zone == zone.key, GuideBoardDay.day >= monday, GuideBoardDay.day <= sunday)) < 7:
            continue
        g = GuideBoardGuideDay
        await session.execute(insert(GuideBoardGuideWeek).from_select(
            ["zone", "day", "guide_userid", "add_store", "any_store", "added", "lost"],
            select(g.zone, literal(monday, Date), g.guide_userid, func.max(g.add_store), func.max(g.any_store),
                   func.sum(g.added), func.sum(g.lost))
            .where(g.zone == zone.key, g.day >= monday, g.day <= sunday).group_by(g.zone, g.guide_userid)
        ).on_conflict_do_nothing())
    return len(claimed)


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


async def tallied_weeks(session, first: dt.date, last: dt.date, zone: ZoneInfo) -> list[dt.date]:
    """The Mondays of the weeks within first…last whose per-guide week tallies are stored."""
    mondays = [day for day in (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
               if day.weekday() == 0 and day + dt.timedelta(days=6) <= last]
    if not mondays:
        return []
    w = GuideBoardGuideWeek
    return sorted(as_date(day) for day in (await session.execute(
        select(w.day).where(w.zone == zone.key, w.day.in_(mondays)).distinct())).scalars())


def ranked_tallies(period: str, periods: list[dt.date], zone: ZoneInfo, dialect: str, top: int):
    """The unfiltered board of tallied days or weeks (their Mondays): (period, rank, guide_userid,
    name, store_code, new, lost), each period's `top` leaders. On PostgreSQL each period's leaders
    are the first `top` entries of the rank index (a short range read), not a sort of every guide."""
    g = GuideBoardGuideDay if period == "day" else GuideBoardGuideWeek
    order = (g.added.desc(), g.lost, g.guide_userid)  # the board's order; userid in code-point order
    if dialect == "postgresql":
        wanted = values(column("day", Date), name="periods").data([(day,) for day in periods])
        leaders = (select(g).where(g.zone == zone.key, g.day == wanted.c.day).order_by(*order).limit(top)
                   ).lateral()
        rows = select(leaders).select_from(wanted).join(leaders, true()).subquery()
    else:
        rows = select(g).where(g.zone == zone.key, g.day.in_(periods)).subquery()
    ranked = select(rows, func.row_number().over(
        partition_by=rows.c.day, order_by=(rows.c.added.desc(), rows.c.lost, rows.c.guide_userid)).label("rank")
    ).subquery()
    return (select(ranked.c.day, ranked.c.rank, ranked.c.guide_userid, Guide.name,
                   func.coalesce(ranked.c.add_store, ranked.c.any_store), ranked.c.added, ranked.c.lost)
            .outerjoin(Guide, Guide.userid == ranked.c.guide_userid).where(ranked.c.rank <= top)
            .order_by(ranked.c.day.desc(), ranked.c.rank))


def as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


@tasks(BOARD_TALLY_JOB, priority=Priority.LOW, timeout=3600)
async def tally_settled_days(ctx: JobContext, payload: dict) -> None:
    """Nightly: the settled days of the last NIGHTLY_DAYS not yet tallied."""
    zone, db = corp_zone(), ctx.services.db
    last = last_settled_day(utcnow().astimezone(zone).date())
    async with db.session() as session, session.begin():
        count = await tally_missing_days(session, last - dt.timedelta(days=NIGHTLY_DAYS - 1), last, zone,
                                         db.engine.dialect.name)
    log.info("PK board: %d settled days tallied", count)
