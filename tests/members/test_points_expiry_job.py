"""The nightly housekeeping: lapsed points and coupons expire, idle members change stage, it re-queues."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.members import ledger
from bot.members.coupons import issue_coupon
from bot.members.housekeeping import HOUSEKEEPING_JOB, next_run, run_housekeeping, seed_housekeeping
from bot.members.models import Coupon, Member, PointsEntry
from bot.storage import utcnow
from bot.storage.models import Job
from tests.members.conftest import add_template, days_ago, give_points, new_member


async def test_housekeeping_expires_points_and_coupons_and_moves_stages(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138000")
    await give_points(db, member.id, 40, "old", now=days_ago(400))
    await give_points(db, member.id, 60, "fresh")
    await add_template(db, "SHORT", valid_days=1)
    async with db.session() as session, session.begin():
        locked = await ledger.lock_member(session, member.id)
        await issue_coupon(session, locked, "SHORT", source="manual", key="c", now=days_ago(3))
        locked.purchase_count, locked.last_purchase_at = 2, days_ago(120)
    result = await run_housekeeping(db, members_cfg)
    assert result == {"coupons_expired": 1, "points_expired": 40, "stages_moved": 1}
    async with db.session() as session:
        member = await session.get(Member, member.id)
        assert member.points_balance == 60 and member.stage == "at_risk"
        assert (await session.scalar(select(Coupon))).status == "expired"
        assert (await session.scalar(select(PointsEntry).where(PointsEntry.kind == "expire"))).points == -40
    assert await run_housekeeping(db, members_cfg) == {"coupons_expired": 0, "points_expired": 0, "stages_moved": 0}


async def test_the_job_is_queued_once_per_night_at_three(db):
    async with db.session() as session, session.begin():
        assert await seed_housekeeping(session) and not await seed_housekeeping(session)
    async with db.session() as session:
        job = await session.scalar(select(Job).where(Job.kind == HOUSEKEEPING_JOB))
    when = dt.datetime.fromtimestamp(job.run_at, dt.timezone(dt.timedelta(hours=8)))
    assert when.hour == 3 and when.timestamp() > utcnow().timestamp()
    # 18:00 UTC is 02:00 in China: tonight at 03:00; 20:00 UTC (04:00) has missed it: tomorrow.
    assert next_run(dt.datetime(2024, 1, 1, 18, 0, tzinfo=dt.UTC)).isoformat() == "2024-01-02T03:00:00+08:00"
    assert next_run(dt.datetime(2024, 1, 1, 20, 0, tzinfo=dt.UTC)).isoformat() == "2024-01-03T03:00:00+08:00"
