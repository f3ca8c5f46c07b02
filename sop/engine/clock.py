"""The corp's clock: step times, windows and quiet hours are local (settings.timezone if the
service has one, else Asia/Shanghai); everything stored is UTC."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.config import DEFAULT_TIMEZONE as DEFAULT_ZONE

DEFAULT_WINDOW = ("08:00", "22:00")  # a template without a window never sends at night


def corp_zone(settings=None) -> ZoneInfo:
    return ZoneInfo(getattr(settings, "timezone", None) or DEFAULT_ZONE)


def at_local(day: dt.date, clock: str, zone: ZoneInfo) -> dt.datetime:
    hour, minute = (int(part) for part in clock.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), zone).astimezone(dt.UTC)


def local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    return moment.astimezone(zone).date()


def local_midnight(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return at_local(local_day(moment, zone), "00:00", zone)


def send_span(due: dt.datetime, window: tuple[str, str], zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """(earliest, deadline) for a step due at `due`: inside the window of its day; due before the
    window opens → when it opens; due after it closes → the next day's window."""
    day = local_day(due, zone)
    start, end = at_local(day, window[0], zone), at_local(day, window[1], zone)
    if due < start:
        return start, end
    if due <= end:
        return due, end
    following = day + dt.timedelta(days=1)
    return at_local(following, window[0], zone), at_local(following, window[1], zone)
