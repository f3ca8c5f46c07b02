"""Downtime longer than the enrolment scan's look-back: occurrences since the last scan still
enrol (day-based triggers replay the missed days), overdue steps run if still inside their window
and are otherwise skipped with the deadline they missed — nothing goes out at 3 a.m. — and two
steps due in one pass stay two group sends, each with its own attachments."""

from __future__ import annotations

import datetime as dt

from sop.engine.engine import SCAN_LOOKBACK
from sop.outreach.config import OutreachConfig
from tests.sop.conftest import ZONE, local
from tests.sop.test_engine import enrolled

WINDOW = {"from": "09:00", "to": "21:00"}


def sku(code: str) -> list[dict]:
    return [{"code": code, "name": code, "price_fen": 100, "url": f"https://shop.example/{code}"}]


async def test_a_long_downtime_enrols_what_happened_and_never_sends_at_night(sw):
    sw.services.use_config(OutreachConfig(_env_file=None, cap_per_day=5))
    await sw.api("POST", "/api/v1/sops", 201, json={
        "code": "welcome", "name": "welcome", "trigger": {"event": "friend_added"}, "window": WINDOW,
        "steps": [
            {"key": "early", "after": {"days": 1}, "at": "10:00", "reach": "group_send",
             "content": {"text": "第一天"}, "sku": sku("EARLY")},
            {"key": "late", "after": {"days": 4}, "at": "10:00", "reach": "group_send",
             "content": {"text": "第四天上午"}, "sku": sku("LATE-1")},
            {"key": "evening", "after": {"days": 4}, "at": "19:30", "reach": "group_send",
             "content": {"text": "第四天晚上"}, "sku": sku("LATE-2")}]})
    day2 = local(2, "12:00").astimezone(ZONE).date()
    await sw.api("POST", "/api/v1/sops", 201, json={
        "code": "sale", "name": "sale", "trigger": {"event": "schedule", "dates": [day2.isoformat()]}, "window": WINDOW,
        "steps": [{"key": "s1", "at": "10:00", "reach": "group_send", "content": {"text": "大促"}}]})
    await sw.tick(dt.datetime.now(dt.UTC))  # the last pass before the service went down
    await sw.bind("wmA1", "ann")  # added while nothing ran
    assert local(4, "03:00") - dt.datetime.now(dt.UTC) > SCAN_LOOKBACK

    report = await sw.tick(local(4, "03:00"))  # back at 3 a.m.
    assert report.enrolled == 2
    assert list(await enrolled(sw, "welcome")) == ["wmA1"]
    assert await enrolled(sw, "sale") == {"wmA1": f"schedule:{day2.isoformat()}"}  # the missed day replayed
    assert sw.group_sends() == []  # never a burst at night
    runs = await sw.runs("welcome")
    assert runs[("wmA1", "early")] == ("skipped", f"missed_window:{local(1, '21:00').isoformat()}")
    assert (await sw.runs("sale"))[("wmA1", "s1")] == ("skipped", f"missed_window:{local(2, '21:00').isoformat()}")
    assert runs[("wmA1", "late")] == ("waiting", None)

    await sw.tick(local(4, "08:59"))
    assert sw.group_sends() == []
    await sw.tick(local(4, "20:00"))  # both day-4 steps are overdue but inside today's window
    sends = sorted(sw.group_sends(), key=lambda send: send.text["content"])
    assert [(send.text["content"], [a["link"]["url"] for a in send.attachments]) for send in sends] == [
        ("第四天上午", ["https://shop.example/LATE-1"]), ("第四天晚上", ["https://shop.example/LATE-2"])]
    runs = await sw.runs("welcome")
    assert runs[("wmA1", "late")] == runs[("wmA1", "evening")] == ("sent", None)
