"""Dry run: per day of the next N days, per step and store, how many customers a template
would reach — the waiting steps of enrolled customers plus today's new occurrences. Writes nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.customers.models import Customer
from bot.members.config import MembersConfig
from sop.engine.clock import local_day
from sop.engine.engine import _candidates, step_due
from sop.engine.models import SopEnrolment, SopRun, SopTemplate


async def dry_run(session, template: SopTemplate, document, *, now: dt.datetime, days: int, zone,
                  members: MembersConfig) -> list[dict]:
    first, last = local_day(now, zone), local_day(now, zone) + dt.timedelta(days=days - 1)
    counts: dict[tuple[str, str, str | None], int] = {}

    def add(due: dt.datetime, step_key: str, store: str | None) -> None:
        day = local_day(due, zone)
        if first <= day <= last:
            key = (day.isoformat(), step_key, store)
            counts[key] = counts.get(key, 0) + 1

    waiting = await session.execute(
        select(SopRun.due_at, SopRun.step_key, Customer.store_code)
        .join(Customer, Customer.external_userid == SopRun.external_userid)
        .where(SopRun.code == template.code, SopRun.status == "waiting"))
    for due, step_key, store in waiting.tuples():
        add(max(due, now), step_key, store)
    enrolled = set((await session.execute(select(SopEnrolment.external_userid, SopEnrolment.trigger_key).where(
        SopEnrolment.code == template.code))).all())
    fresh = [row for row in await _candidates(session, template, document, now, zone, members) if (row[1], row[5]) not in enrolled]
    stores = dict((await session.execute(select(Customer.external_userid, Customer.store_code).where(
        Customer.external_userid.in_([row[1] for row in fresh])))).all()) if fresh else {}
    for _, external_userid, _, _, anchor, _ in fresh:
        for step in document.steps:
            add(step_due(anchor, step, zone), step.key, stores.get(external_userid))
    return [{"day": day, "step": step, "store": store, "customers": n}
            for (day, step, store), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))]
