"""Migration 0011_console_api goes down and up again: the indexes come and go, and console users'
audit entries turn into the old negative token ids and back into user id and username."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.console.accounts import create_user
from bot.storage import Database
from bot.storage.migrate import downgrade, upgrade


async def _state(db: Database) -> tuple[set[str], set[str], list[tuple]]:
    async with db.engine.connect() as conn:
        def read(sync):
            inspector = sa.inspect(sync)
            indexes = {i["name"] for table in ("customers", "orders", "funnel_events", "customer_bindings")
                       for i in inspector.get_indexes(table)}
            return indexes, {c["name"] for c in inspector.get_columns("api_audit")}
        indexes, columns = await conn.run_sync(read)
        wanted = ", ".join(c for c in ("token_id", "user_id", "username") if c in columns)
        rows = (await conn.execute(sa.text(f"SELECT {wanted} FROM api_audit ORDER BY id"))).all()
    return indexes, columns, [tuple(row) for row in rows]


async def test_down_and_up_again_keeps_who_wrote(database_url):
    db = Database(database_url)
    try:
        user = await create_user(db, "li.ming", "correct horse battery", "hq_admin")
        async with db.engine.begin() as conn:
            for token_id, user_id, username in ((5, None, None), (None, user.id, "li.ming")):
                await conn.execute(sa.text(
                    "INSERT INTO api_audit (at, token_id, user_id, username, role, method, operation, path, status) "
                    "VALUES (CURRENT_TIMESTAMP, :t, :u, :n, 'hq_admin', 'POST', '/x', '/x', 201)"),
                    {"t": token_id, "u": user_id, "n": username})
        await db.engine.dispose()
        await asyncio.to_thread(downgrade, database_url, "0011_jobs_dead")
        indexes, columns, rows = await _state(db)
        assert not {"user_id", "username"} & columns and rows == [(5,), (-user.id,)]
        assert not {"ix_orders_customer", "ix_customer_bindings_started", "ix_customers_external_userid_pattern"} & indexes
        await db.engine.dispose()
        await asyncio.to_thread(upgrade, database_url)
        indexes, columns, rows = await _state(db)
        assert rows == [(5, None, None), (None, user.id, "li.ming")]
        assert {"ix_orders_customer", "ix_customer_bindings_started", "ix_customer_bindings_ended"} <= indexes
        if database_url.startswith("postgresql"):  # pg_trgm is offered by the test server
            assert {"ix_customers_name_trgm", "ix_customers_name_prefix", "ix_funnel_events_at_covering"} <= indexes
    finally:
        await db.dispose()
