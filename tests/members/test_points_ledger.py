"""The points ledger: idempotency, FIFO expiry, refusals that change nothing, balance == entries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.members import ledger
from bot.members.errors import MemberError
from bot.members.ledger import InsufficientPoints
from bot.members.models import Member, PointsEntry, PointsLot
from bot.storage import utcnow
from tests.members.conftest import give_points, new_member


async def totals(db, member_id: int) -> tuple[int, int, int]:
    """(balance on the row, sum of the ledger, sum of the live lots)."""
    async with db.session() as session:
        balance = (await session.get(Member, member_id)).points_balance
        entries = await session.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0))
                                       .where(PointsEntry.member_id == member_id))
        lots = await session.scalar(select(func.coalesce(func.sum(PointsLot.remaining), 0))
                                    .where(PointsLot.member_id == member_id))
    return balance, entries, lots


async def debit(db, member_id: int, points: int, key: str, **options):
    async with db.session() as session, session.begin():
        member = await ledger.lock_member(session, member_id)
        return await ledger.debit(session, member, points, kind="redeem", key=key, **options)


async def test_earn_and_redeem_keep_balance_equal_to_entries_and_lots(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138000")
    await give_points(db, member.id, 300, "e1")
    await give_points(db, member.id, 200, "e2")
    await debit(db, member.id, 450, "r1")
    assert await totals(db, member.id) == (50, 50, 50)


async def test_replaying_a_key_changes_nothing_and_a_reused_key_is_refused(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138001")
    await give_points(db, member.id, 100, "earn-1")
    await give_points(db, member.id, 100, "earn-1")
    assert await totals(db, member.id) == (100, 100, 100)
    with pytest.raises(MemberError) as refused:
        await debit(db, member.id, 100, "earn-1")
    assert refused.value.code == "idempotency_conflict"
    assert await totals(db, member.id) == (100, 100, 100)


async def test_redeeming_more_than_the_balance_is_refused_and_nothing_changes(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138002")
    await give_points(db, member.id, 80, "e")
    with pytest.raises(InsufficientPoints) as refused:
        await debit(db, member.id, 81, "too-much")
    assert refused.value.status == 409 and refused.value.details == {"balance": 80, "wanted": 81}
    assert await totals(db, member.id) == (80, 80, 80)
    async with db.session() as session:
        assert await session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == "too-much")) is None


async def test_debits_spend_the_soonest_expiring_points_first(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138003")
    await give_points(db, member.id, 100, "late", days=300)
    await give_points(db, member.id, 100, "soon", days=10)
    await debit(db, member.id, 120, "r")
    async with db.session() as session:
        lots = {lot.entry_id: lot.remaining for lot in (await session.scalars(select(PointsLot))).all()}
        entries = {e.idempotency_key: e.id for e in (await session.scalars(select(PointsEntry))).all()}
    assert lots[entries["soon"]] == 0 and lots[entries["late"]] == 80


async def test_lapsed_points_expire_with_an_entry_and_cannot_be_spent(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138004")
    long_ago = utcnow() - dt.timedelta(days=400)
    await give_points(db, member.id, 70, "old", now=long_ago)
    await give_points(db, member.id, 30, "new")
    with pytest.raises(InsufficientPoints):
        await debit(db, member.id, 50, "spend")
    async with db.session() as session, session.begin():
        locked = await ledger.lock_member(session, member.id)
        assert await ledger.expire_due(session, locked) == 70
    assert await totals(db, member.id) == (30, 30, 30)
    async with db.session() as session:
        expired = await session.scalar(select(PointsEntry).where(PointsEntry.kind == "expire"))
    assert expired.points == -70 and expired.balance_after == 30


async def test_points_expiring_soon_are_reported_with_their_date(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138005")
    await give_points(db, member.id, 40, "soon", days=5)
    await give_points(db, member.id, 60, "later", days=200)
    async with db.session() as session:
        soon, first = await ledger.expiring_soon(session, member.id, within_days=30)
    assert soon == 40 and first.date() == (utcnow() + dt.timedelta(days=5)).date()


async def test_refund_style_debit_takes_only_what_is_left(db, members_cfg):
    member = await new_member(db, members_cfg, phone="13800138006")
    await give_points(db, member.id, 100, "e")
    await debit(db, member.id, 90, "spent")
    entry = await debit(db, member.id, 100, "reverse", up_to_balance=True)
    assert entry.points == -10 and await totals(db, member.id) == (0, 0, 0)
    assert await debit(db, member.id, 100, "reverse-again", up_to_balance=True) is None
