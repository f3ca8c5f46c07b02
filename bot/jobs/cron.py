"""Recurring jobs: a 5-field cron spec (minute hour day month weekday) in the corp's time zone.

`next_run` is pure. Each occurrence is an ordinary job with the dedupe key
`cron:<name>:<occurrence>`, so any number of processes can queue it and it exists once. Start-up
queues the next occurrence of every recurring job (`seed_cron_jobs`); when an occurrence ends,
the runner queues the one after it in the same transaction (`queue_next_occurrences`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.config import DEFAULT_TIMEZONE
from bot.jobs.queue import insert_jobs, job_row
from bot.storage.db import utcnow

KEY_PREFIX = "cron:"

_FIELDS = (  # name, lowest, highest, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, {m: i for i, m in enumerate(
        "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}),
    ("weekday", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)


@dataclass(frozen=True)
class CronSpec:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day field was `*`
    any_weekday: bool

    def matches_date(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:  # cron: one restricted field decides alone ...
            return by_day and by_weekday
        return by_day or by_weekday  # ... both restricted: either matches


def _number(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.lower())
    if value is None:
        if not text.isdigit():
            raise ValueError(f"cron {name} field: {text!r} is not a number")
        value = int(text)
    if not low <= value <= high:
        raise ValueError(f"cron {name} field: {value} is outside {low}-{high}")
    return value


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, name, 1, high, {}) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (_number(part, name, low, high, names) for part in span.split("-", 1))
            if first > last:
                raise ValueError(f"cron {name} field: range {span!r} runs backwards")
        else:
            first = _number(span, name, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def parse_cron(spec: str) -> CronSpec:
    """Parse `minute hour day month weekday`; ValueError names the field that is wrong."""
    parts = spec.split()
    if len(parts) != 5:
        raise ValueError(f"cron spec {spec!r} must have 5 fields: minute hour day month weekday")
    minutes, hours, days, months, weekdays = (
        _parse_field(part, *definition) for part, definition in zip(parts, _FIELDS, strict=True))
    return CronSpec(minutes, hours, days, months, frozenset(w % 7 for w in weekdays),
                    any_day=parts[2] == "*", any_weekday=parts[4] == "*")


def next_run(spec: str | CronSpec, now: dt.datetime, tz: str | dt.tzinfo = DEFAULT_TIMEZONE) -> dt.datetime:
    """The first minute strictly after `now` that matches `spec`, in `tz` (aware)."""
    cron = parse_cron(spec) if isinstance(spec, str) else spec
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    start = (now.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None) + dt.timedelta(minutes=1))
    day = start.date()
    for _ in range(366 * 8):  # 29 February on a given weekday can be years away
        if cron.matches_date(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    local = dt.datetime.combine(day, dt.time(hour, minute))
                    if local < start:
                        continue
                    candidate = local.replace(tzinfo=zone)
                    if candidate.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == local:
                        return candidate  # (a local time skipped by a DST change is not)
        day += dt.timedelta(days=1)
    raise ValueError(f"cron spec {spec!r} never matches")


@dataclass(frozen=True)
class CronJob:
    name: str
    spec: str
    kind: str
    payload: dict = field(default_factory=dict)


def cron(name: str, spec: str, kind: str, payload: dict | None = None) -> CronJob:
    """Declare a recurring job beside its task: `kind` runs at every match of `spec`. A feature
    lists it in its `cron`; the composition installs it (`install_cron_jobs`)."""
    if not name or ":" in name:
        raise ValueError(f"cron name {name!r} must be non-empty and without ':'")
    parse_cron(spec)
    return CronJob(name, spec, kind, dict(payload or {}))


_cron_jobs: dict[str, CronJob] = {}  # installed by the composition: the runner queues next occurrences


def install_cron_jobs(jobs: list[CronJob]) -> None:
    for job in jobs:
        if _cron_jobs.get(job.name, job) != job:
            raise ValueError(f"cron job {job.name!r} declared twice")
        _cron_jobs[job.name] = job


def cron_jobs() -> list[CronJob]:
    """The recurring jobs installed in this process."""
    return list(_cron_jobs.values())


def occurrence_key(name: str, when: dt.datetime) -> str:
    return f"{KEY_PREFIX}{name}:{when.isoformat(timespec='minutes')}"


def occurrence_row(job: CronJob, now: dt.datetime, tz: str | dt.tzinfo) -> dict:
    when = next_run(job.spec, now, tz)
    return job_row(job.kind, job.payload, dedupe_key=occurrence_key(job.name, when), run_at=when.timestamp())


async def seed_cron_jobs(session, tz: str | dt.tzinfo = DEFAULT_TIMEZONE, now: dt.datetime | None = None,
                         jobs: list[CronJob] | None = None) -> int:
    """Queue the next occurrence of every recurring job (idempotent); how many were new."""
    now = now or utcnow()
    rows = [occurrence_row(job, now, tz) for job in (cron_jobs() if jobs is None else jobs)]
    return len(await insert_jobs(session, rows))


async def queue_next_occurrences(session, finished, tz: str | dt.tzinfo, now: dt.datetime | None = None) -> int:
    """For finished jobs that were cron occurrences, queue each one's next occurrence."""
    names = {job.dedupe_key.split(":", 2)[1] for job in finished
             if job.dedupe_key and job.dedupe_key.startswith(KEY_PREFIX)}
    due = [_cron_jobs[name] for name in names if name in _cron_jobs]
    return await seed_cron_jobs(session, tz, now, due) if due else 0
