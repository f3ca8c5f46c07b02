"""The enrich sweep grants a batch of new-member benefits in a few statements, one per customer
exactly, and leaves members that exist already to the general path."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, func, select

from bot.customers.models import Customer
from bot.members.config import MembersConfig
from bot.members.members import create_member
from bot.members.models import Coupon, CouponTemplate, Member, PointsEntry, PointsLot
from bot.members.welcome import ensure_default_template, grant_new_member_benefits
from bot.storage import utcnow


async def add_customers(db, external_userids: list[str], at: dt.datetime, unionid: str | None = None) -> None:
    async with db.session() as session, session.begin():
        for external_userid in external_userids:
            session.add(Customer(external_userid=external_userid, name=f"客户{external_userid}", gender=0, tags=[],
                                 unionid=unionid, guide_userid="guide1", status="bound", bound_at=at,
                                 first_bound_at=at, created_at=at, updated_at=at))


async def test_a_batch_of_new_customers_each_gets_one_member_bonus_and_coupon_in_a_few_statements(world):
    db, config, now = world.services.db, world.services.config(MembersConfig), utcnow()
    async with db.session() as session, session.begin():
        await ensure_default_template(session, config)
    new = [f"wmN{i}" for i in range(10)]
    await add_customers(db, new, now)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        await grant_new_member_benefits(world.services, [(c, None) for c in new])
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listener)
    # The template (catalog), two reads, one INSERT per table (members, entries, lots, coupons), one stock UPDATE,
    # not six statements per customer (the app's job runner may run statements meanwhile: not counted).
    grant = [s for s in statements if any(table in s for table in ("customers", "members", "points_", "coupon"))]
    assert len(grant) <= 8, grant
    async with db.session() as session:
        members = {m.external_userid: m for m in await session.scalars(select(Member))}
        coupons = list(await session.scalars(select(Coupon)))
        issued = await session.scalar(select(CouponTemplate.issued_count).where(
            CouponTemplate.code == config.welcome_template_code))
        entries = await session.scalar(select(func.count()).select_from(PointsEntry))
        lots = await session.scalar(select(func.count()).select_from(PointsLot))
    assert set(members) == set(new)
    assert all(m.points_balance == config.join_bonus_points for m in members.values())
    assert sorted(c.member_id for c in coupons) == sorted(m.id for m in members.values())
    assert {c.issue_key for c in coupons} == {f"welcome:{m.id}" for m in members.values()}
    assert issued == len(new)
    if config.join_bonus_points:
        assert entries == lots == len(new)


async def test_a_member_already_and_a_customer_twice_in_the_batch_get_one_coupon_each(world):
    db, config, now = world.services.db, world.services.config(MembersConfig), utcnow()
    async with db.session() as session, session.begin():
        await ensure_default_template(session, config)
        await create_member(session, config, source="test", external_userid="wmMember", unionid=None, name="老会员")
    await add_customers(db, ["wmMember", "wmTwice"], now)
    await grant_new_member_benefits(world.services, [("wmMember", None), ("wmTwice", None), ("wmTwice", None)])
    async with db.session() as session:
        per_member = dict((await session.execute(
            select(Member.external_userid, func.count(Coupon.id)).join(Coupon, Coupon.member_id == Member.id)
            .group_by(Member.external_userid))).all())
    assert per_member == {"wmMember": 1, "wmTwice": 1}
