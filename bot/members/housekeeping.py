"""The nightly members job: lapse coupons and points, move idle members to at_risk / dormant.

`members.housekeeping` re-queues itself for the next night (deduplicated by date), so enqueueing
it once (`seed_housekeeping`) keeps it running.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import distinct, select

from bot.jobs import JobContext, enqueue, tasks
from bot.members import coupons, ledger, lifecycle
from bot.members.config import members_config
from bot.members.models import PointsLot
from bot.storage import utcnow

log = logging.getLogger("bot.members")

HOUSEKEEPING_JOB = "members.housekeeping"
CHINA = dt.timezone(dt.timedelta(hours=8))
RUN_AT_HOUR = 3  # 03:00 China time, after the tills' day closes
BATCH = 500


def next_run(now: dt.datetime) -> dt.datetime:
    local = now.astimezone(CHINA)
    run = local.replace(hour=RUN_AT_HOUR, minute=0, second=0, microsecond=0)
    return run if run > local else run + dt.timedelta(days=1)


async def seed_housekeeping(session) -> bool:
    """Queue the next nightly run (idempotent per night)."""
    when = next_run(utcnow())
    return await enqueue(session, HOUSEKEEPING_JOB, {}, dedupe_key=f"{HOUSEKEEPING_JOB}:{when:%Y-%m-%d}",
                         run_at=when.timestamp())


async def run_housekeeping(db, now: dt.datetime | None = None) -> dict[str, int]:
    now, config = now or utcnow(), members_config()
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


@tasks(HOUSEKEEPING_JOB)
async def members_housekeeping(ctx: JobContext, payload: dict) -> None:
    started = time.monotonic()
    result = await run_housekeeping(ctx.services.db)
    log.info("members housekeeping %s in %.1fs", result, time.monotonic() - started)
    async with ctx.services.db.session() as session, session.begin():
        await seed_housekeeping(session)
