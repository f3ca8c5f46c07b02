"""Migration 0006_console goes down and up again cleanly (on a scratch SQLite file)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.storage.migrate import downgrade, upgrade


def tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    try:
        inspector = sa.inspect(engine)
        return set(inspector.get_table_names()), {i["name"] for i in inspector.get_indexes("funnel_events")}
    finally:
        engine.dispose()


async def test_the_console_migration_downgrades_and_upgrades(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
    await asyncio.to_thread(upgrade, url)
    tables, indexes = tables_and_indexes(url)
    assert {"console_users", "console_sessions"} <= tables and "ix_funnel_events_at" in indexes
    await asyncio.to_thread(downgrade, url, "0005_landing")
    tables, indexes = tables_and_indexes(url)
    assert not {"console_users", "console_sessions"} & tables and "ix_funnel_events_at" not in indexes
    await asyncio.to_thread(upgrade, url)
    assert {"console_users", "console_sessions"} <= tables_and_indexes(url)[0]
