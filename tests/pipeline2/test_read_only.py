"""Read-only connections and sessions do not wait for a writer (on SQLite: no BEGIN IMMEDIATE)."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, func, select, text

from bot.storage import Database, utcnow
from bot.storage.models import InboxEvent


async def test_a_read_does_not_wait_for_a_writer_holding_its_transaction_open(database_url):
    writer, reader = Database(database_url), Database(database_url)
    try:
        async with writer.engine.begin() as conn:  # a write transaction left open meanwhile
            await conn.execute(InboxEvent.__table__.insert().values(
                dedup_key="held", kind="text", msg_type="text", create_time=0, plaintext="<xml/>",
                status="pending", attempts=0, received_at=utcnow()))

            async def read_both_ways():
                async with reader.reading() as reading:
                    committed = await reading.scalar(select(func.count()).select_from(InboxEvent))
                async with reader.read_session() as session:
                    also = await session.scalar(select(func.count()).select_from(InboxEvent))
                return committed, also

            # SQLite's BEGIN IMMEDIATE would wait busy_timeout (10 s) for the writer, then fail.
            assert await asyncio.wait_for(read_both_ways(), 3) == (0, 0)
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_writes_still_take_the_write_lock_first_on_sqlite(database_url):
    db = Database(database_url)
    begins = []
    try:
        event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: begins.append(args[2]))
        async with db.engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
        async with db.reading() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await db.dispose()
    assert begins.count("SELECT 1") == 2
    # PostgreSQL begins implicitly (asyncpg); SQLite's BEGIN is the listener's, one of each kind.
    assert [s for s in begins if s.startswith("BEGIN")] == (["BEGIN IMMEDIATE", "BEGIN"] if db.is_sqlite else [])
