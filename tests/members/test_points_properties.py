"""Ledger properties (hypothesis): balance == sum of entries == sum of live lots after any sequence of
changes, and never negative under 50 truly concurrent redeems (separate sessions and connections)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bot.members import ledger
from bot.members.config import MembersConfig
from bot.members.errors import MemberError
from bot.members.members import create_member
from bot.members.models import Member, PointsEntry, PointsLot
from bot.storage import Database, utcnow

CONFIG = MembersConfig(_env_file=None, join_bonus_points=0)
serial = itertools.count()

operation = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 500), st.integers(-30, 400)),  # days until expiry
    st.tuples(st.just("redeem"), st.integers(1, 600), st.just(0)),
    st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool), st.just(0)),
    st.tuples(st.just("expire"), st.just(0), st.just(0)),
    st.tuples(st.just("replay"), st.just(0), st.just(0)),
)


async def _member(db: Database) -> int:
    async with db.session() as session, session.begin():
        member, _ = await create_member(session, CONFIG, source="admin", external_userid=f"wm-prop-{next(serial)}")
    return member.id


async def _apply(db: Database, member_id: int, op: tuple, key: str, last_key: str | None) -> None:
    kind, amount, days = op
    now = utcnow()
    try:
        async with db.session() as session, session.begin():
            member = await ledger.lock_member(session, member_id)
            if kind == "earn" or (kind == "adjust" and amount > 0):
                await ledger.credit(session, member, amount, kind=kind, key=key, valid_days=1,
                                    now=now - dt.timedelta(days=400), expires_at=now + dt.timedelta(days=days))
            elif kind in ("redeem", "adjust"):
                await ledger.debit(session, member, abs(amount), kind=kind, key=key)
            elif kind == "expire":
                await ledger.expire_due(session, member)
            elif last_key:
                entry = await session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == last_key))
                if entry is not None and entry.points > 0 and entry.kind != "expire":
                    await ledger.credit(session, member, entry.points, kind=entry.kind, key=last_key, valid_days=1)
    except MemberError as exc:
        assert exc.code == "insufficient_points"


async def _totals(db: Database, member_id: int) -> tuple[int, int, int]:
    async with db.session() as session:
        balance = (await session.get(Member, member_id)).points_balance
        entries = await session.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0))
                                       .where(PointsEntry.member_id == member_id))
        lots = await session.scalar(select(func.coalesce(func.sum(PointsLot.remaining), 0))
                                    .where(PointsLot.member_id == member_id))
    return balance, entries, lots


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_balance_equals_entries_and_lots_after_any_sequence(database_url, ops):
    async def scenario():
        db = Database(database_url)
        try:
            member_id = await _member(db)
            last_key = None
            for index, op in enumerate(ops):
                key = f"prop-{member_id}-{index}"
                await _apply(db, member_id, op, key, last_key)
                last_key = key
                balance, entries, lots = await _totals(db, member_id)
                assert balance == entries == lots >= 0
            async with db.session() as session, session.begin():
                await ledger.expire_due(session, await ledger.lock_member(session, member_id))
            balance, entries, lots = await _totals(db, member_id)
            assert balance == entries == lots >= 0
        finally:
            await db.dispose()

    asyncio.run(scenario())


def _concurrent_database(url: str) -> Database:
    """A Database whose pool holds all 50 sessions at once on PostgreSQL, so none waits for a connection."""
    db = Database(url)
    if not db.is_sqlite:
        db.engine = create_async_engine(url, pool_size=55, max_overflow=0)
        db.sessions = async_sessionmaker(db.engine, expire_on_commit=False)
    return db


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 2000), amounts=st.lists(st.integers(1, 120), min_size=50, max_size=50))
def test_fifty_concurrent_redeems_never_lose_an_update_or_go_negative(database_url, start, amounts):
    async def scenario():
        db = _concurrent_database(database_url)
        try:
            member_id = await _member(db)
            if start:
                async with db.session() as session, session.begin():
                    member = await ledger.lock_member(session, member_id)
                    await ledger.credit(session, member, start, kind="earn", key=f"seed-{member_id}", valid_days=30)
            # On PostgreSQL every redeem holds an open transaction before any takes the row lock.
            barrier = asyncio.Barrier(len(amounts)) if not db.is_sqlite else None

            async def redeem(index: int, amount: int) -> int:
                try:
                    async with db.session() as session, session.begin():
                        if barrier is not None:
                            await session.execute(select(1))
                            await barrier.wait()
                        member = await ledger.lock_member(session, member_id)
                        await ledger.debit(session, member, amount, kind="redeem", key=f"c-{member_id}-{index}")
                    return amount
                except MemberError as exc:
                    assert exc.code == "insufficient_points"
                    return 0

            taken = await asyncio.gather(*(redeem(i, a) for i, a in enumerate(amounts)))
            balance, entries, lots = await _totals(db, member_id)
            assert balance == entries == lots == start - sum(taken) >= 0
            # Every refusal happened when the balance truly was too small for it.
            assert all(a > balance for a, t in zip(amounts, taken, strict=True) if t == 0)
        finally:
            await db.dispose()

    asyncio.run(scenario())
