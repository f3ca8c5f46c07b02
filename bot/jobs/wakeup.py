"""Cross-process wake-ups on PostgreSQL: enqueuers NOTIFY, workers LISTEN.

Polling stays the safety net; NOTIFY only makes a worker look at once instead of at its next
poll, so a web process's new job starts in milliseconds on another machine's worker.
NOTIFY is delivered at commit (never for a rolled-back job) and repeats within one transaction
collapse into one.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    """A dedicated asyncpg connection that calls `on_notify` for every NOTIFY on the channel.

    When the connection is lost (a PostgreSQL restart, a network cut, an idle-connection killer)
    it is opened again, every `retry_seconds` until that works; `on_notify` is then called once,
    since a NOTIFY sent meanwhile reached nobody. Polling covers the gap.
    """

    CHECK_SECONDS = 5.0  # also look at the connection this often, in case no close was reported

    def __init__(self, database_url: str, on_notify: Callable[[], None], retry_seconds: float = 1.0) -> None:
        self.dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.on_notify = on_notify
        self.retry_seconds = retry_seconds
        self._connection = None
        self._lost = asyncio.Event()
        self._watch: asyncio.Task | None = None

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def start(self) -> None:
        await self._connect()
        self._watch = asyncio.create_task(self._reopen_when_lost())

    async def _connect(self) -> bool:
        import asyncpg

        connection = None
        try:
            connection = await asyncpg.connect(self.dsn, timeout=10)
            connection.add_termination_listener(lambda _connection: self._lost.set())
            await connection.add_listener(CHANNEL, lambda *_: self.on_notify())
        except Exception as exc:  # polling still works
            log.warning("cannot LISTEN for job wake-ups (%s); relying on polling until it can", exc)
            if connection is not None:
                connection.terminate()
            return False
        self._lost.clear()
        self._connection = connection
        return True

    async def _reopen_when_lost(self) -> None:
        while True:
            if self._connection is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), self.CHECK_SECONDS)
                if not self._lost.is_set() and not self._connection.is_closed():
                    continue
                log.warning("the LISTEN connection for job wake-ups was lost; opening it again")
                self._connection.terminate()
                self._connection = None
            await asyncio.sleep(self.retry_seconds)
            if await self._connect():
                log.info("listening for job wake-ups again")
                self.on_notify()  # a NOTIFY sent while it was gone reached nobody: look now

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.close(), 5)
            self._connection = None
