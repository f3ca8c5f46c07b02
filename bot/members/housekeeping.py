"""The nightly members job: lapse coupons and points, move idle members to at_risk / dormant.

A cron job (bot/jobs/cron.py): start-up queues tonight's run, the runner queues the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import distinct, select

from bot.jobs import JobContext, Priority, tasks
from bot.jobs.cron import DEFAULT_TIMEZONE, cron, seed_cron_jobs
from bot.jobs.cron import next_run as next_cron_run
from bot.members import coupons, ledger, lifecycle
from bot.members.config import MembersConfig
from bot.members.models import PointsLot
from bot.storage import utcnow

log = logging.getLogger("bot.members")

HOUSEKEEPING_JOB = "members.housekeeping"
BATCH = 500

# 03:00 in the corp's time zone, after the tills' day closes.
HOUSEKEEPING_CRON = cron("members.housekeeping", "0 3 * * *", HOUSEKEEPING_JOB)


def next_run(now: dt.datetime, tz: str = DEFAULT_TIMEZONE) -> dt.datetime:
    return next_cron_run(HOUSEKEEPING_CRON.spec, now, tz)


async def seed_housekeeping(session, tz: str = DEFAULT_TIMEZONE) -> bool:
    """Queue the next nightly run (idempotent per night)."""
    return bool(await seed_cron_jobs(session, tz, jobs=[HOUSEKEEPING_CRON]))


async def run_housekeeping(db, config: MembersConfig, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    async with db.session() as session, session.begin():
        expired_coupons = await coupons.expire_coupons(session, now)
        moved = await lifecycle.refresh_idle_stages(session, config, now)
    expired_points = 0
    while True:
        async with db.session() as session:
            due = (await session.scalars(select(distinct(PointsLot.member_id)).where(
                PointsLot.remaining > 0, PointsLot.expires_at <= now).limit(BATCH))).all()
        if not due:
            break
        for member_id in due:  # one short transaction per member: tills keep earning meanwhile
            async with db.session() as session, session.begin():
                expired_points += await ledger.expire_due(session, await ledger.lock_member(session, member_id), now)
    return {"coupons_expired": expired_coupons, "points_expired": expired_points, "stages_moved": moved}


@tasks(HOUSEKEEPING_JOB, priority=Priority.LOW, timeout=3600)
async def members_housekeeping(ctx: JobContext, payload: dict) -> None:
    started = time.monotonic()
    result = await run_housekeeping(ctx.services.db, ctx.services.config(MembersConfig))
    log.info("members housekeeping %s in %.1fs", result, time.monotonic() - started)
