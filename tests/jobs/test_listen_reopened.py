"""A worker's LISTEN connection comes back after PostgreSQL drops it (a restart, a network cut)."""

from __future__ import annotations

import asyncpg

from bot.jobs.wakeup import CHANNEL, PostgresListener
from tests.conftest import prepare_postgres, until


async def _listening_backends(admin) -> list[int]:
    """The backends of this database whose last statement was the LISTEN (asyncpg quotes the name)."""
    return [row["pid"] for row in await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND query ILIKE $1", f"%LISTEN%{CHANNEL}%")]


async def test_listen_is_opened_again_after_postgresql_drops_it(postgres_url):
    await prepare_postgres(postgres_url)
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    woken = []
    listener = PostgresListener(postgres_url, lambda: woken.append(1), retry_seconds=0.1)
    admin = await asyncpg.connect(dsn)
    try:
        await listener.start()
        first = await until(lambda: _listening_backends(admin))
        await admin.execute(f"NOTIFY {CHANNEL}")
        await until(lambda: len(woken) >= 1)

        # What a restart does to every connection: the server ends the backend.
        await admin.execute("SELECT pg_terminate_backend($1)", first[0])
        again = await until(lambda: _other_backend(admin, first[0]), within=15)
        assert again and again[0] != first[0]
        woken.clear()
        await admin.execute(f"NOTIFY {CHANNEL}")
        await until(lambda: len(woken) >= 1)  # a NOTIFY after the drop still wakes the worker
        assert listener.listening
    finally:
        await listener.stop()
        await admin.close()


async def _other_backend(admin, old_pid: int) -> list[int]:
    return [pid for pid in await _listening_backends(admin) if pid != old_pid]
