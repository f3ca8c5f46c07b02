"""One rule for "open now": locate and choose agree about the same store at the same instant, read
in the corp's time zone (Asia/Shanghai unless TIMEZONE says otherwise)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.stores.hours import CHINA, corp_timezone
from tests.landing.conftest import CUSTOMER_GCJ, FAR_AWAY, STORES

DAYTIME = {day: ["10:00-22:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# Tuesday 1 December 2026: 03:00 UTC is 11:00 in Shanghai (open), 15:00 UTC is 23:00 (closed).
SHANGHAI_MORNING = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
SHANGHAI_NIGHT = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
async def code(landing):
    stores = [{**store, "opening_hours": DAYTIME} for store in STORES]
    return await landing.seed(stores=stores, fallback={"store_code": "BJ001"})


async def offers_at(landing, monkeypatch, code, instant, point) -> list[dict]:
    """The offers of locate and of both kinds of choice, every one decided at `instant`."""
    monkeypatch.setattr("bot.stores.locate.utcnow", lambda: instant)
    answers = []
    for step, body in (("locate", {"lat": point[0], "lng": point[1], "coord_system": "gcj02"}),
                       ("choose", {"fallback": True}), ("choose", {"store_code": "BJ001"})):
        status, offer = await landing.post(code, step, body)
        assert status == 200, offer
        answers.append(offer)
    return answers


@pytest.mark.parametrize(("instant", "open_now"), [(SHANGHAI_MORNING, True), (SHANGHAI_NIGHT, False)])
async def test_the_fallback_store_is_open_or_closed_alike_for_locate_and_choose(
        landing, monkeypatch, code, instant, open_now):
    located, fallback, chosen = await offers_at(landing, monkeypatch, code, instant, FAR_AWAY)
    assert [o["store"]["code"] for o in (located, fallback, chosen)] == ["BJ001"] * 3
    assert located["decision"] == fallback["decision"] == "fallback_store"
    assert [o["open_now"] for o in (located, fallback, chosen)] == [open_now] * 3


async def test_a_fallback_store_closed_at_night_is_not_called_open_because_nearby_stores_are(
        landing, monkeypatch):
    # The Shanghai stores never close; the fallback store in Beijing does.
    stores = [{**store, "opening_hours": DAYTIME if store["code"] == "BJ001" else None} for store in STORES]
    guides = [{"userid": "dan", "name": "丹丹", "store_code": "BJ001"},
              {"userid": "ann", "name": "安娜", "store_code": "SH001", "status": "on_leave"}]
    code = await landing.seed(stores=stores, guides=guides, fallback={"store_code": "BJ001"})
    located, fallback, chosen = await offers_at(landing, monkeypatch, code, SHANGHAI_NIGHT, CUSTOMER_GCJ)
    assert located["decision"] == "fallback_store"
    assert [o["open_now"] for o in (located, fallback, chosen)] == [False] * 3


def test_hours_are_read_in_the_corp_zone_and_the_default_is_shanghai(make_settings):
    assert corp_timezone(make_settings()) == CHINA
    assert corp_timezone(type("WithZone", (), {"timezone": "Europe/Berlin"})()).key == "Europe/Berlin"
