"""Opening and working hours: {"mon": ["10:00-22:00"], …} in the corp's time zone; None means always.

A missing day means closed (stores) or off (guides). A range whose end is before its start runs
past midnight ("20:00-02:00"): it counts on its own day from the start and until the end.
CSV files may use the short form "mon-fri 10:00-22:00; sat,sun 09:00-23:00".
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.config import DEFAULT_TIMEZONE

CHINA = ZoneInfo(DEFAULT_TIMEZONE)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class InvalidHours(ValueError):
    """Hours that cannot be understood; the message says which part."""


def validate_hours(value: dict | None) -> dict | None:
    """The canonical form of an hours mapping, or InvalidHours."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidHours("hours must be an object like {\"mon\": [\"10:00-22:00\"]}")
    canonical: dict[str, list[str]] = {}
    for day, ranges in value.items():
        if day not in DAYS:
            raise InvalidHours(f"unknown day {day!r}; use {', '.join(DAYS)}")
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list):
            raise InvalidHours(f"{day}: give a list of HH:MM-HH:MM ranges")
        for item in ranges:
            if not isinstance(item, str) or not _RANGE.match(item.strip()):
                raise InvalidHours(f"{day}: {item!r} is not HH:MM-HH:MM")
        canonical[day] = [item.strip() for item in ranges]
    return canonical


def parse_hours_text(text: str) -> dict | None:
    """CSV cell → hours: empty (always), a JSON object, or "mon-fri 10:00-22:00; sun 12:00-18:00"."""
    text = (text or "").strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            return validate_hours(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidHours(f"not valid JSON: {exc.msg}") from None
    hours: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        days_text, _, ranges_text = part.partition(" ")
        ranges = [r.strip() for r in ranges_text.split(",") if r.strip()]
        if not ranges:
            raise InvalidHours(f"{part!r}: expected days then ranges, e.g. mon-fri 10:00-22:00")
        for day in _expand_days(days_text):
            hours.setdefault(day, []).extend(ranges)
    return validate_hours(hours)


def _expand_days(text: str) -> list[str]:
    days: list[str] = []
    for token in text.lower().split(","):
        first, _, last = token.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise InvalidHours(f"unknown day in {text!r}; use {', '.join(DAYS)}")
        start, end = DAYS.index(first), DAYS.index(last or first)
        days.extend(DAYS[start : end + 1] if start <= end else DAYS[start:] + DAYS[: end + 1])
    return days


@lru_cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def corp_timezone(settings) -> ZoneInfo:
    """The one zone that opening hours, working hours and daily limits are read in.

    `settings.timezone` (TIMEZONE) when the settings have it, else Asia/Shanghai.
    """
    return _zone(getattr(settings, "timezone", None) or DEFAULT_TIMEZONE)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def is_within(hours: dict | None, when: dt.datetime, zone: ZoneInfo = CHINA) -> bool:
    """True when `when` (any zone) falls inside the hours, read in `zone` (the corp's)."""
    if hours is None:
        return True
    local = when.astimezone(zone)
    minute = local.hour * 60 + local.minute
    today, yesterday = DAYS[local.weekday()], DAYS[(local.weekday() - 1) % 7]
    for item in hours.get(today, []):
        start, end = (_minutes(x) for x in item.split("-"))
        if start <= minute < end or (end <= start and minute >= start):
            return True
    # An overnight range of the previous day still covers the small hours.
    for item in hours.get(yesterday, []):
        start, end = (_minutes(x) for x in item.split("-"))
        if end <= start and minute < end:
            return True
    return False


def china_day_start(when: dt.datetime, zone: ZoneInfo = CHINA) -> dt.datetime:
    """Midnight (corp time) of the day containing `when`, as a UTC datetime: daily limits reset then."""
    local = when.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
