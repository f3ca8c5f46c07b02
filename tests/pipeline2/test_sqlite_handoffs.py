"""The embedded SQLite driver: one trip to aiosqlite's thread per statement, none for a ROLLBACK
with nothing to roll back, and transactions still end as before."""

from __future__ import annotations

import aiosqlite
import pytest
from sqlalchemy import text

from bot.storage import Database


@pytest.fixture
async def sqlite_db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/handoffs.db")
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch):
    counted = []
    original = aiosqlite.Connection._execute

    async def counting(self, fn, *args, **kwargs):
        counted.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return counted


async def test_a_write_transaction_is_one_trip_per_statement_and_one_commit(sqlite_db, trips):
    async with sqlite_db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert (await conn.execute(text("SELECT x FROM t"))).scalar_one() == 1
    # BEGIN IMMEDIATE, INSERT, SELECT, COMMIT; the pool's ROLLBACK on check-in finds nothing to do.
    # (SQLAlchemy's own adapter: 3-4 trips per statement and a ROLLBACK: 12.)
    assert len(trips) == 4, trips


async def test_what_is_not_committed_is_still_rolled_back(sqlite_db):
    conn = await sqlite_db.engine.connect()
    await conn.execute(text("INSERT INTO t VALUES (1)"))
    await conn.close()
    session = sqlite_db.session()
    await session.execute(text("INSERT INTO t VALUES (2)"))
    await session.close()
    async with sqlite_db.engine.begin() as conn:  # would fail inside a transaction left open
        await conn.execute(text("INSERT INTO t VALUES (3)"))
    async with sqlite_db.reading() as conn:
        assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [3]


async def test_a_failed_statement_leaves_no_transaction_behind(sqlite_db):
    with pytest.raises(Exception, match="no such table"):
        async with sqlite_db.engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.execute(text("INSERT INTO missing VALUES (1)"))
    async with sqlite_db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (2)"))
    async with sqlite_db.reading() as conn:
        assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [2]
