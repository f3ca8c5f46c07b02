"""The points ledger: every change is an appended entry with an idempotency key.

Callers lock the member row first (`lock_member`): SELECT … FOR UPDATE on PostgreSQL; on SQLite the
transaction already holds the single write lock (BEGIN IMMEDIATE). Under that lock the balance is
read, checked and written together with the entry, so concurrent earns and redeems never lose an
update and never go below zero. Credits become lots; debits consume the soonest-expiring lots first.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.members.errors import MemberError
from bot.members.models import Member, PointsEntry, PointsLot
from bot.storage import utcnow

CREDIT_KINDS = frozenset({"earn", "adjust", "reverse", "merge"})
DEBIT_KINDS = frozenset({"redeem", "expire", "adjust", "reverse", "merge"})


class InsufficientPoints(MemberError):
    def __init__(self, balance: int, wanted: int) -> None:
        super().__init__(409, "insufficient_points", f"balance is {balance} points, {wanted} needed",
                         {"balance": balance, "wanted": wanted})


async def lock_member(session: AsyncSession, member_id: int) -> Member:
    """The member row, locked until the transaction ends; fresh from the database."""
    member = await session.scalar(
        select(Member).where(Member.id == member_id).with_for_update().execution_options(populate_existing=True)
    )
    if member is None:
        raise MemberError(404, "member_not_found", f"member {member_id} does not exist")
    return member


async def _replayed(
    session: AsyncSession, member: Member, key: str, kind: str, points: int | None
) -> PointsEntry | None:
    """The entry already written under `key`; a key reused for another change is refused."""
    entry = await session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == key))
    if entry is None:
        return None
    if entry.member_id != member.id or entry.kind != kind or (points is not None and entry.points != points):
        raise MemberError(409, "idempotency_conflict",
                          f"idempotency key {key!r} was already used for a different change")
    return entry


def _append(session, member, kind, points, key, reason, ref, actor, now, expires_at=None) -> PointsEntry:
    member.points_balance += points
    entry = PointsEntry(member_id=member.id, kind=kind, points=points, balance_after=member.points_balance,
                        idempotency_key=key, reason=reason[:200], ref=ref, actor=actor, expires_at=expires_at,
                        created_at=now)
    session.add(entry)
    return entry


async def credit(
    session: AsyncSession, member: Member, points: int, *, kind: str, key: str, valid_days: int,
    reason: str = "", ref: str | None = None, actor: str = "system", now: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> PointsEntry:
    """Add points (a new lot expiring after `valid_days`, or at `expires_at`); replays return the entry."""
    assert kind in CREDIT_KINDS and points > 0, (kind, points)
    if (entry := await _replayed(session, member, key, kind, points)) is not None:
        return entry
    now = now or utcnow()
    expires_at = expires_at or now + dt.timedelta(days=valid_days)
    entry = _append(session, member, kind, points, key, reason, ref, actor, now, expires_at)
    await session.flush()
    session.add(PointsLot(member_id=member.id, entry_id=entry.id, expires_at=expires_at, remaining=points))
    return entry


async def debit(
    session: AsyncSession, member: Member, points: int, *, kind: str, key: str, reason: str = "",
    ref: str | None = None, actor: str = "system", now: dt.datetime | None = None,
    up_to_balance: bool = False, prefer_entry_id: int | None = None,
) -> PointsEntry | None:
    """Take points, soonest-expiring first; InsufficientPoints unless `up_to_balance` (refunds).

    Returns None when `up_to_balance` leaves nothing to take.
    """
    assert kind in DEBIT_KINDS and points > 0, (kind, points)
    if (entry := await _replayed(session, member, key, kind, None if up_to_balance else -points)) is not None:
        return entry
    now = now or utcnow()
    await expire_due(session, member, now)
    if points > member.points_balance:
        if not up_to_balance:
            raise InsufficientPoints(member.points_balance, points)
        points = member.points_balance
        if points == 0:
            return None
    await _consume_lots(session, member.id, points, now, prefer_entry_id)
    return _append(session, member, kind, -points, key, reason, ref, actor, now)


async def _consume_lots(session, member_id: int, points: int, now, prefer_entry_id: int | None) -> None:
    lots = (await session.scalars(
        select(PointsLot).where(PointsLot.member_id == member_id, PointsLot.remaining > 0,
                                PointsLot.expires_at > now)
        .order_by(PointsLot.expires_at, PointsLot.id)
    )).all()
    # A refund takes back the points of its own order first, then the oldest.
    lots = sorted(lots, key=lambda lot: lot.entry_id != prefer_entry_id)
    for lot in lots:
        if points == 0:
            break
        taken = min(lot.remaining, points)
        lot.remaining -= taken
        points -= taken
    assert points == 0, "lots out of step with the balance"


async def expire_due(session: AsyncSession, member: Member, now: dt.datetime | None = None) -> int:
    """Write an `expire` entry for each lapsed lot that still has points; returns points expired."""
    now = now or utcnow()
    lots = (await session.scalars(
        select(PointsLot).where(PointsLot.member_id == member.id, PointsLot.remaining > 0,
                                PointsLot.expires_at <= now).order_by(PointsLot.id)
    )).all()
    total = 0
    for lot in lots:
        total += lot.remaining
        _append(session, member, "expire", -lot.remaining, f"expire:lot:{lot.id}",
                "积分过期", f"entry:{lot.entry_id}", "system", now)
        lot.remaining = 0
    return total


async def expiring_soon(session: AsyncSession, member_id: int, within_days: int,
                        now: dt.datetime | None = None) -> tuple[int, dt.datetime | None]:
    """Points that lapse within `within_days`, and the first date they do."""
    now = now or utcnow()
    lots = (await session.execute(
        select(PointsLot.remaining, PointsLot.expires_at).where(
            PointsLot.member_id == member_id, PointsLot.remaining > 0, PointsLot.expires_at > now,
            PointsLot.expires_at <= now + dt.timedelta(days=within_days))
        .order_by(PointsLot.expires_at)
    )).all()
    return sum(lot.remaining for lot in lots), (lots[0].expires_at if lots else None)
