"""Unit tests: opening/working hours, the guide rules, the store directory, contact-way states."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.customers.models import CustomerBinding
from bot.features import wiring
from bot.kv.memory import MemoryStore
from bot.stores.assign import GUIDE_ADDS_SINCE, choose_guide, guide_if_available, pick_by_rule
from bot.stores.contact_ways import new_state
from bot.stores.directory import StoreDirectory
from bot.stores.hours import CHINA, InvalidHours, china_day_start, is_within, parse_hours_text
from bot.stores.models import Guide, Store


def china(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CHINA)


MONDAY_NOON = china(2024, 6, 3, 12, 0)


def test_hours_text_forms_and_errors():
    assert parse_hours_text("") is None
    hours = parse_hours_text("mon-wed 10:00-22:00; sat,sun 09:00-12:00,14:00-23:00")
    assert hours == {"mon": ["10:00-22:00"], "tue": ["10:00-22:00"], "wed": ["10:00-22:00"],
                     "sat": ["09:00-12:00", "14:00-23:00"], "sun": ["09:00-12:00", "14:00-23:00"]}
    assert parse_hours_text("sat-mon 10:00-11:00").keys() == {"sat", "sun", "mon"}  # wraps the week
    assert parse_hours_text('{"fri": "10:00-24:00"}') == {"fri": ["10:00-24:00"]}
    for bad in ("mon 10-22", "funday 10:00-22:00", "mon-fri", '{"mon": [1]}', "{oops"):
        with pytest.raises(InvalidHours):
            parse_hours_text(bad)


def test_is_within_reads_china_time_and_overnight_ranges():
    hours = {"mon": ["10:00-22:00"], "fri": ["20:00-02:00"]}
    assert is_within(hours, MONDAY_NOON)
    assert is_within(hours, MONDAY_NOON.astimezone(dt.UTC))  # same instant, any zone
    assert not is_within(hours, china(2024, 6, 3, 22, 0))  # the end is exclusive
    assert not is_within(hours, china(2024, 6, 4, 12, 0))  # Tuesday: closed
    assert is_within(hours, china(2024, 6, 7, 23, 30)) and is_within(hours, china(2024, 6, 8, 1, 59))
    assert not is_within(hours, china(2024, 6, 8, 2, 0))
    assert is_within(None, MONDAY_NOON)


def test_china_day_starts_at_midnight_china_time():
    late_utc = dt.datetime(2024, 6, 3, 16, 30, tzinfo=dt.UTC)  # 00:30 on 4 June in China
    assert china_day_start(late_utc) == dt.datetime(2024, 6, 3, 16, 0, tzinfo=dt.UTC)


def guide(id_: int, userid: str, **extra) -> Guide:
    values = {"store_code": "S1", "status": "active", "daily_add_limit": 5, "is_backup": False,
              "working_hours": None, "name": userid, **extra}
    return Guide(id=id_, userid=userid, **values)


def test_pick_by_rule():
    eligible = [guide(1, "a"), guide(2, "b"), guide(3, "c")]
    counts = {"a": 3, "b": 1, "c": 1}
    assert [pick_by_rule("round_robin", eligible, counts, turn).userid for turn in range(4)] == ["a", "b", "c", "a"]
    assert pick_by_rule("least_loaded", eligible, counts, 0).userid == "b"  # tie broken by id
    assert pick_by_rule("fixed", eligible, counts, 7).userid == "a"


async def test_choose_guide_skips_off_hours_full_and_inactive_then_uses_backup(db):
    now = MONDAY_NOON.astimezone(dt.UTC)
    async with db.session() as session, session.begin():
        session.add(Store(code="S1", name="S1"))
        await session.flush()
        session.add_all([
            guide(1, "off", working_hours={"tue": ["10:00-22:00"]}),
            guide(2, "full", daily_add_limit=1),
            guide(3, "leave", status="on_leave"),
            guide(4, "ok"),
            guide(5, "backup", is_backup=True),
        ])
        session.add(CustomerBinding(external_userid="wm", guide_userid="full", store_code="S1", source="scan",
                                    started_at=now - dt.timedelta(hours=1)))
        # Yesterday's adds do not count against today's limit.
        session.add(CustomerBinding(external_userid="wm0", guide_userid="ok", store_code="S1", source="scan",
                                    started_at=now - dt.timedelta(days=1)))
    kv = MemoryStore()
    adds = wiring().provided(GUIDE_ADDS_SINCE)  # the customers feature counts the bindings
    async with db.session() as session:
        picks = [(await choose_guide(session, kv, "S1", rule, now, adds=adds))
                 for rule in ("round_robin", "least_loaded")]
        assert [(p.guide.userid, p.reason) for p in picks] == [("ok", "rule"), ("ok", "rule")]
        # The same limit holds for a code's fallback guide.
        assert await guide_if_available(session, "full", now, adds=adds) is None
        assert (await guide_if_available(session, "ok", now, adds=adds)).userid == "ok"
    async with db.session() as session, session.begin():
        (await session.get(Guide, 4)).status = "resigned"
    async with db.session() as session:
        pick = await choose_guide(session, kv, "S1", "round_robin", now, adds=adds)
        assert (pick.guide.userid, pick.reason) == ("backup", "backup")
        assert await choose_guide(session, kv, "S404", "round_robin", now, adds=adds) is None


def test_directory_prefers_stores_open_now_and_keeps_closed_ones_out():
    directory = StoreDirectory()
    directory.load([
        Store(code="NEAR", name="近", city="上海", address="", lat=31.2304, lng=121.4737, status="open",
              opening_hours={"mon": ["10:00-22:00"]}),
        Store(code="FAR", name="远", city="上海", address="", lat=31.2500, lng=121.4737, status="open",
              opening_hours=None),
        Store(code="SHUT", name="关", city="上海", address="", lat=31.2305, lng=121.4737, status="closed",
              opening_hours=None),
        Store(code="NOPOS", name="无坐标", city="", address="", lat=None, lng=None, status="open",
              opening_hours=None),
    ])
    found, open_now = directory.nearest(31.2304, 121.4737, 5000, MONDAY_NOON)
    assert [c.code for c, _ in found] == ["NEAR", "FAR"] and open_now
    found, open_now = directory.nearest(31.2304, 121.4737, 5000, china(2024, 6, 3, 23, 0))
    assert [c.code for c, _ in found] == ["FAR"] and open_now  # NEAR closed for the night
    found, open_now = directory.nearest(31.2304, 121.4737, 1000, china(2024, 6, 3, 23, 0))
    assert [c.code for c, _ in found] == ["NEAR"] and not open_now  # only a sleeping store in range
    assert {c.code for c in directory.cities()["上海"]} == {"NEAR", "FAR"}
    assert [c.code for c in directory.cities()["其他"]] == ["NOPOS"]


def test_contact_way_state_fits_wecom_and_is_readable():
    state = new_state("a-very-long-channel-code-indeed", "STORE-CODE-THAT-IS-LONG-TOO")
    assert len(state) <= 30 and state.startswith("a-very-lon.STORE-CODE")
    assert new_state("c", "s") != new_state("c", "s")
