"""Cross-process wake-ups on PostgreSQL: enqueuers NOTIFY, workers LISTEN.

Polling stays the safety net; NOTIFY only makes a worker look at once instead of at its next
poll, so a web process's new job starts in milliseconds on another machine's worker.
NOTIFY is delivered at commit (never for a rolled-back job) and repeats within one transaction
collapse into one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event, text

log = logging.getLogger("bot.jobs")

CHANNEL = "wa_jobs"
NOTIFY = text(f"NOTIFY {CHANNEL}")


# Runners in this process: woken right after the enqueuing transaction commits.
_local_runners: set[Callable[[], None]] = set()


def register_local_runner(wake: Callable[[], None]) -> Callable[[], None]:
    """Add a runner's wake-up; returns the function that removes it."""
    _local_runners.add(wake)
    return lambda: _local_runners.discard(wake)


def wake_local_runners() -> None:
    for wake in list(_local_runners):
        wake()


async def notify_workers(connection) -> None:
    """Call inside the enqueuing transaction (a Session or a Connection)."""
    bind = connection.get_bind() if hasattr(connection, "get_bind") else connection
    if bind.dialect.name == "postgresql":
        await connection.execute(NOTIFY)
    if hasattr(connection, "sync_session"):
        event.listen(connection.sync_session, "after_commit", _woken_after_commit, once=True)


def _woken_after_commit(_session) -> None:
    wake_local_runners()


class PostgresListener:
    """A dedicated asyncpg connection that calls `on_notify` for every NOTIFY on the channel."""

    def __init__(self, database_url: str, on_notify: Callable[[], None]) -> None:
        self.dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.on_notify = on_notify
        self._connection = None

    async def start(self) -> None:
        import asyncpg

        try:
            self._connection = await asyncpg.connect(self.dsn)
            await self._connection.add_listener(CHANNEL, lambda *_: self.on_notify())
        except Exception as exc:  # polling still works
            log.warning("cannot LISTEN for job wake-ups (%s); relying on polling", exc)
            self._connection = None

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
