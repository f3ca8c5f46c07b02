"""Funnel and leaderboard numbers after real scans, adds and deletes; the store-manager scope."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.api.auth import Role, create_token
from bot.customers.board import period_start
from bot.stores.hours import CHINA
from tests.stores.conftest import bearer, lbs_world_on, until


@pytest.fixture
async def lbs_world(world):
    return await lbs_world_on(world)


async def play_a_day(world) -> str:
    """3 scans, 3 locates at SH001, 2 adds (ann then bo, round robin), 1 delete; 1 direct add in Beijing."""
    code = await world.seed()
    for _ in range(3):
        assert (await world.client.get(f"/qr/{code}")).status == 200
    await world.customer_scans_and_adds(code, "wm1")
    await world.customer_scans_and_adds(code, "wm2")
    await world.locate(code, 31.2330, 121.4750)
    await world.driver.customer_adds_guide("wmBj", "dan")

    async def customer_wm2():
        status, data = await world.api("GET", "/api/v1/customers/wm2")
        return data if status == 200 else None

    wm2 = await until(customer_wm2)
    await world.driver.customer_deletes_guide("wm2", wm2["guide"]["code"])

    async def settled():
        _, page = await world.api("GET", "/api/v1/stats/funnel?by=guide", 200)
        return page if sum(r["deletes"] for r in page["rows"]) == 1 and sum(r["adds"] for r in page["rows"]) == 3 \
            else None

    await until(settled)
    return code


async def test_funnel_by_code_channel_store_and_guide(lbs_world):
    world = lbs_world
    code = await play_a_day(world)
    _, by_code = await world.api("GET", "/api/v1/stats/funnel?by=code", 200)
    row = next(r for r in by_code["rows"] if r["key"] == code)
    assert (row["scans"], row["located"], row["adds"], row["deletes"], row["net_friends"]) == (3, 3, 2, 1, 1)
    assert row["conversion"] == round(2 / 3, 4)
    direct = next(r for r in by_code["rows"] if r["key"] is None)
    assert direct["adds"] == 1  # the direct add in Beijing came from no code

    _, by_channel = await world.api("GET", "/api/v1/stats/funnel?by=channel", 200)
    assert {r["key"]: r["adds"] for r in by_channel["rows"]} == {"poster": 2, "direct": 1}
    _, by_store = await world.api("GET", "/api/v1/stats/funnel?by=store", 200)
    sh001 = next(r for r in by_store["rows"] if r["key"] == "SH001")
    assert (sh001["located"], sh001["adds"], sh001["net_friends"], sh001["conversion"]) == (3, 2, 1, round(2 / 3, 4))
    _, by_guide = await world.api("GET", "/api/v1/stats/funnel?by=guide", 200)
    assert {r["key"] for r in by_guide["rows"]} >= {"ann", "bo", "dan"}


async def test_leaderboard_ranks_guides_per_day_and_week(lbs_world):
    world = lbs_world
    await play_a_day(world)
    _, board = await world.api("GET", "/api/v1/stats/guides?period=day", 200)
    today = dt.datetime.now(CHINA).date().isoformat()
    rows = [(r["period_start"], r["rank"], r["guide_userid"], r["new_friends"], r["lost"]) for r in board["rows"]]
    # Everyone added one; the one who lost theirs ranks last, the tie between the others by userid.
    lost_guide = next(r for r in rows if r[4] == 1)[2]
    assert [r[2] for r in rows][-1] == lost_guide and all(r[0] == today and r[3] == 1 for r in rows)
    assert [r[1] for r in rows] == [1, 2, 3]
    _, weekly = await world.api("GET", "/api/v1/stats/guides?period=week", 200)
    assert {r["period_start"] for r in weekly["rows"]} == {period_start(dt.datetime.now(dt.UTC), "week").isoformat()}


async def test_store_manager_sees_only_their_stores_in_stats(lbs_world):
    world = lbs_world
    await play_a_day(world)
    manager = bearer(await create_token(world.services.db, Role.STORE_MANAGER, store_codes=["BJ001"]))
    _, board = await world.api("GET", "/api/v1/stats/guides", 200, headers=manager)
    assert [r["guide_userid"] for r in board["rows"]] == ["dan"]
    _, funnel = await world.api("GET", "/api/v1/stats/funnel?by=store", 200, headers=manager)
    assert [r["key"] for r in funnel["rows"]] == ["BJ001"]
    guide = bearer(await create_token(world.services.db, Role.GUIDE, guide_userid="dan"))
    status, _ = await world.api("GET", "/api/v1/stats/guides", headers=guide)
    assert status == 403


async def test_stats_bad_periods(lbs_world):
    # Off the schema: 400; on it but the two dates do not make a period: 422.
    for query, expected in (("since=2024-05-02&until=2024-05-01", 422), ("since=2023-01-01&until=2024-06-01", 422),
                            ("by=planet", 400), ("since=yesterday", 400)):
        status, data = await lbs_world.api("GET", f"/api/v1/stats/funnel?{query}")
        assert status == expected and data["error"]["code"] == "invalid_request", query


def test_week_starts_on_monday_in_china_time():
    sunday_late_utc = dt.datetime(2024, 6, 2, 17, 30, tzinfo=dt.UTC)  # Monday 01:30 in China
    assert period_start(sunday_late_utc, "week") == dt.date(2024, 6, 3)
    assert period_start(sunday_late_utc, "day") == dt.date(2024, 6, 3)
