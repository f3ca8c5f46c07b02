"""The PK board, now tallied in the database, ranks exactly as the row-by-row tally did: China-time
day and week boundaries, losses, ties, the store filter and a store manager's scope; `top` keeps
each period's leaders."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import pytest

from bot.customers.board import as_date, period_start
from bot.customers.models import CustomerBinding
from bot.stores.hours import CHINA
from bot.stores.models import Guide, Store

GUIDES = {"ga": "S1", "gb": "S1", "gc": "S2", "gd": "S2"}


def reference(bindings, period: str, start, end, stores=None) -> list[tuple]:
    """The former Python tally: (period_start, rank, guide, store, new, lost) per guide and period."""
    tally = defaultdict(lambda: [None, 0, 0])
    for guide, store, source, started, ended, reason in bindings:
        if stores is not None and store not in stores:
            continue
        if start <= started < end and source in ("scan", "direct"):
            entry = tally[(period_start(started, period), guide)]
            entry[0], entry[1] = store, entry[1] + 1
        if ended is not None and start <= ended < end and reason in ("customer_deleted", "guide_deleted"):
            entry = tally[(period_start(ended, period), guide)]
            entry[0], entry[2] = entry[0] or store, entry[2] + 1
    rows = []
    for day in sorted({day for day, _ in tally}, reverse=True):
        board = sorted(((g, v) for (d, g), v in tally.items() if d == day), key=lambda i: (-i[1][1], i[1][2], i[0]))
        rows += [(day.isoformat(), rank, g, s, new, lost) for rank, (g, (s, new, lost)) in enumerate(board, start=1)]
    return rows


@pytest.fixture
async def bindings(crm):
    rng = random.Random(7)
    midnight = dt.datetime.combine(dt.datetime.now(CHINA).date(), dt.time(), CHINA).astimezone(dt.UTC)
    made = []
    for _ in range(400):
        guide = rng.choice(sorted(GUIDES))
        # Many land on the very edges of a China-time day, where a UTC tally would go wrong.
        started = midnight - dt.timedelta(days=rng.randrange(70)) + rng.choice(
            [dt.timedelta(seconds=-1), dt.timedelta(0), dt.timedelta(hours=rng.randrange(24), minutes=rng.randrange(60))])
        ended = started + dt.timedelta(hours=rng.randrange(1, 400)) if rng.random() < 0.3 else None
        if ended is not None and ended > dt.datetime.now(dt.UTC):
            ended = None
        reason = rng.choice(["customer_deleted", "guide_deleted", "handover"]) if ended else None
        made.append((guide, GUIDES[guide], rng.choice(["scan", "scan", "direct", "handover"]), started, ended, reason))
    async with crm.services.db.session() as session, session.begin():
        for code in ("S1", "S2"):
            session.add(Store(code=code, name=f"门店{code}"))
        await session.flush()
        for userid, store in GUIDES.items():
            session.add(Guide(userid=userid, name=f"导购{userid}", store_code=store))
        for n, (guide, store, source, started, ended, reason) in enumerate(made):
            session.add(CustomerBinding(external_userid=f"wmL{n}", guide_userid=guide, store_code=store, source=source,
                                        started_at=started, ended_at=ended, end_reason=reason))
    return made


@pytest.mark.parametrize("period, days", [("day", 7), ("day", 60), ("week", 56), ("week", 84)])
async def test_board_matches_the_row_by_row_tally(crm, bindings, period, days):
    until = dt.datetime.now(CHINA).date()
    since = until - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(since, dt.time(), CHINA).astimezone(dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), CHINA).astimezone(dt.UTC)
    query = {"period": period, "since": since.isoformat(), "until": until.isoformat()}

    def rows(board):
        return [(r["period_start"], r["rank"], r["guide_userid"], r["store_code"], r["new_friends"], r["lost"])
                for r in board["rows"]]

    expected = reference(bindings, period, start, end)
    board = await crm.get("/api/v1/stats/guides", **query)
    assert len(expected) > 10 and rows(board) == expected
    assert {r["guide_name"] for r in board["rows"]} == {f"导购{g}" for g in GUIDES}
    assert rows(await crm.get("/api/v1/stats/guides", store_code="S2", **query)) == reference(
        bindings, period, start, end, stores={"S2"})
    assert rows(await crm.get("/api/v1/stats/guides", as_="manager", **query)) == reference(
        bindings, period, start, end, stores={"S1"})
    # Only each period's leaders, when asked (the default keeps 100).
    assert rows(await crm.get("/api/v1/stats/guides", top=2, **query)) == [r for r in expected if r[1] <= 2]


@pytest.mark.parametrize("zone_name", ["Asia/Shanghai", "Europe/Berlin"])  # Berlin: summer time starts 2026-03-29
async def test_periods_follow_the_zones_calendar_across_summer_time(crm, zone_name):
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from bot.customers.board import as_date, period_of

    zone = ZoneInfo(zone_name)
    moments = [dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)
               for day in range(27, 31) for hour, minute in ((21, 59), (22, 0), (22, 59), (23, 0), (23, 30))]
    async with crm.services.db.session() as session, session.begin():
        for n, at in enumerate(moments):
            session.add(CustomerBinding(external_userid=f"wmZ{n}", guide_userid="gz", source="scan", started_at=at))
    start, end = dt.datetime(2026, 3, 20, tzinfo=dt.UTC), dt.datetime(2026, 4, 5, tzinfo=dt.UTC)
    dialect = crm.services.db.engine.dialect.name
    for period in ("day", "week"):
        bucket = period_of(CustomerBinding.started_at, period, start, end, zone, dialect)
        async with crm.services.db.session() as session:
            found = (await session.execute(select(CustomerBinding.started_at, bucket)
                                           .where(CustomerBinding.guide_userid == "gz"))).all()
        for at, day in found:
            local = at.astimezone(zone).date()
            expected = local - dt.timedelta(days=local.weekday()) if period == "week" else local
            assert as_date(day) == expected, (zone_name, period, at)


async def test_settled_days_are_tallied_once_and_today_and_yesterday_stay_live(crm, bindings):
    """Days before yesterday are read from their tallies (filled on demand, once); an add written
    late onto a tallied day stays off the board, one onto yesterday or today counts."""
    from sqlalchemy import func, select

    from bot.customers.board_models import GuideBoardDay, GuideBoardTally

    today = dt.datetime.now(CHINA).date()
    query = {"period": "day", "since": (today - dt.timedelta(days=59)).isoformat(), "until": today.isoformat()}
    first = await crm.get("/api/v1/stats/guides", **query)
    async with crm.services.db.session() as session:
        days = set(await session.scalars(select(GuideBoardDay.day)))
        tallies = await session.scalar(select(func.count()).select_from(GuideBoardTally))
    assert days == {today - dt.timedelta(days=n) for n in range(2, 60)} and tallies > 50
    assert await crm.get("/api/v1/stats/guides", **query) == first  # read back from the tallies

    def at(days_ago: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12), CHINA).astimezone(dt.UTC)

    async with crm.services.db.session() as session, session.begin():
        for n, days_ago in enumerate((1, 0, 10)):  # yesterday, today, a tallied day
            session.add(CustomerBinding(external_userid=f"wmLate{n}", guide_userid="gz", store_code="S9",
                                        source="scan", started_at=at(days_ago)))
    board = await crm.get("/api/v1/stats/guides", **query)
    late = {r["period_start"] for r in board["rows"] if r["guide_userid"] == "gz"}
    assert late == {(today - dt.timedelta(days=1)).isoformat(), today.isoformat()}


async def test_the_nightly_job_tallies_the_settled_days_the_board_then_reads(crm, bindings):
    from sqlalchemy import select

    from bot.customers import board
    from bot.customers.board_models import GuideBoardDay
    from bot.customers.feature import FEATURE
    from bot.jobs import JobContext

    assert board.BOARD_TALLY_CRON in FEATURE.cron and board.tally_settled_days in FEATURE.jobs
    await board.tally_settled_days(JobContext(crm.services, 1, board.BOARD_TALLY_JOB, 1), {})
    async with crm.services.db.session() as session:
        days = set(await session.scalars(select(GuideBoardDay.day).where(GuideBoardDay.zone == "Asia/Shanghai")))
    today = dt.datetime.now(CHINA).date()
    assert days == {today - dt.timedelta(days=n) for n in range(2, 2 + board.NIGHTLY_DAYS)}
    since = today - dt.timedelta(days=59)
    start = dt.datetime.combine(since, dt.time(), CHINA).astimezone(dt.UTC)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), CHINA).astimezone(dt.UTC)
    found = await crm.get("/api/v1/stats/guides", period="week", since=since.isoformat(), until=today.isoformat())
    assert [(r["period_start"], r["rank"], r["guide_userid"], r["store_code"], r["new_friends"], r["lost"])
            for r in found["rows"]] == reference(bindings, "week", start, end)


async def test_the_unfiltered_day_board_reads_one_tally_per_guide_and_day(crm, bindings):
    """Settled days are also tallied per (day, guide) over all stores, in the same pass: a guide with
    bindings in two stores on one day is one row, summed, under the store of their adds."""
    from sqlalchemy import func, select

    from bot.customers.board_models import GuideBoardGuideDay, GuideBoardTally

    today = dt.datetime.now(CHINA).date()

    def at(days_ago: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour), CHINA).astimezone(dt.UTC)

    async with crm.services.db.session() as session, session.begin():
        for n, (store, added, ended) in enumerate([("S1", at(5, 9), None), ("S2", at(5, 10), None),
                                                   ("S2", at(5, 11), None), ("S9", at(30, 8), at(5, 12))]):
            session.add(CustomerBinding(external_userid=f"wmMove{n}", guide_userid="gmove", store_code=store,
                                        source="scan", started_at=added, ended_at=ended,
                                        end_reason="customer_deleted" if ended else None))
    since = today - dt.timedelta(days=9)
    board = await crm.get("/api/v1/stats/guides", period="day", since=since.isoformat(), until=today.isoformat())
    moved = [r for r in board["rows"] if r["guide_userid"] == "gmove"]
    assert [(r["period_start"], r["store_code"], r["new_friends"], r["lost"]) for r in moved] == [
        ((today - dt.timedelta(days=5)).isoformat(), "S2", 3, 1)]
    async with crm.services.db.session() as session:
        per_guide = (await session.execute(select(
            GuideBoardGuideDay.day, GuideBoardGuideDay.guide_userid, GuideBoardGuideDay.added, GuideBoardGuideDay.lost)
            .order_by(GuideBoardGuideDay.day, GuideBoardGuideDay.guide_userid))).all()
        summed = (await session.execute(select(
            GuideBoardTally.day, GuideBoardTally.guide_userid, func.sum(GuideBoardTally.added),
            func.sum(GuideBoardTally.lost)).group_by(GuideBoardTally.day, GuideBoardTally.guide_userid)
            .order_by(GuideBoardTally.day, GuideBoardTally.guide_userid))).all()
    assert len(per_guide) > 10 and [tuple(r) for r in per_guide] == [tuple(r) for r in summed]


async def test_complete_weeks_are_tallied_per_guide_and_rank_as_the_row_by_row_tally(crm, bindings):
    from sqlalchemy import select

    from bot.customers.board_models import GuideBoardGuideWeek

    today = dt.datetime.now(CHINA).date()
    since = today - dt.timedelta(days=59)  # any weekday: its first week is part of one, summed from days
    found = await crm.get("/api/v1/stats/guides", period="week", since=since.isoformat(), until=today.isoformat())
    async with crm.services.db.session() as session:
        mondays = {as_date(day) for day in await session.scalars(select(GuideBoardGuideWeek.day).distinct())}
    settled = today - dt.timedelta(days=2)
    complete = {since + dt.timedelta(days=n) for n in range(60)}
    complete = {day for day in complete if day.weekday() == 0 and since <= day and day + dt.timedelta(days=6) <= settled}
    assert len(complete) >= 6 and mondays == complete
    start = dt.datetime.combine(since, dt.time(), CHINA).astimezone(dt.UTC)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), CHINA).astimezone(dt.UTC)
    assert [(r["period_start"], r["rank"], r["guide_userid"], r["store_code"], r["new_friends"], r["lost"])
            for r in found["rows"]] == reference(bindings, "week", start, end)
