"""The callback spool: a local SQLite file that keeps callbacks while the database cannot.

WeCom tries a callback three times within seconds, then drops it; a database outage longer than
that would lose every callback of those seconds. When the inbox write fails on the database (or
takes longer than CALLBACK_INBOX_TIMEOUT_SECONDS), the event is written here instead, fsynced,
and only then answered 200. A drainer moves spooled events into the inbox through the normal
InboxWriter (so the dispatch job and the intake jobs are written with the row) when the database
answers again; the inbox's unique dedup key makes a second copy (WeCom's retry, a write that was
slow but did commit, a drain interrupted by a crash) a no-op.

One file per web process identity (CALLBACK_SPOOL_PATH, by default derived from the database and
the port): a process killed and restarted drains what it left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web

from bot.callback.inbox import InboxWriter, is_bad_row
from bot.config import Settings
from bot.metrics import CALLBACK_SPOOL_DRAINED, CALLBACK_SPOOL_PENDING
from bot.storage.batching import GroupCommit
from bot.wecom.crypto import CallbackRejected
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.callback.spool")

DRAIN_BATCH = 200
MAX_DRAIN_ATTEMPTS = 5  # a row the database keeps refusing as data stays in the file, reported
RETRY_MIN_SECONDS, RETRY_MAX_SECONDS = 0.2, 2.0
POLL_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_callbacks (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    plaintext TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)
"""


def default_spool_path(settings: Settings) -> Path:
    """Beside the SQLite database; else in the temp dir, per database and port (set
    CALLBACK_SPOOL_PATH to a persistent volume in production)."""
    if settings.callback_spool_path:
        return Path(settings.callback_spool_path)
    if settings.is_sqlite:
        database = Path(settings.database_url.split("///", 1)[-1])
        return database.with_name(f"{database.stem}-callback-spool-{settings.port}.sqlite3")
    identity = hashlib.sha256(f"{settings.database_url}|{settings.port}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "wecom-assistant-spool" / f"{identity}.sqlite3"


class CallbackSpool:
    """Append, take, forget: a queue of decrypted callbacks in one SQLite file (stdlib sqlite3)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from worker threads one at a time
        self._appends = GroupCommit(self._append_batch)  # one fsync per burst, not per callback
        self.added = asyncio.Event()

    async def keep(self, event: InboundEvent) -> bool:
        """Durably keep the event; False when it is already in the spool (WeCom's retry)."""
        new = await self._appends.submit(event)
        self.added.set()
        return new

    async def pending(self) -> int:
        """Events waiting for the database (0 without touching the disk when nothing was spooled)."""
        if self._connection is None and not self.path.exists():
            return 0
        return await asyncio.to_thread(self._run, lambda db: db.execute(
            "SELECT count(*) FROM spooled_callbacks").fetchone()[0])

    async def writable(self) -> bool:
        try:
            await asyncio.to_thread(self._run, lambda db: db.execute("SELECT 1"))
            return True
        except (OSError, sqlite3.Error):
            return False

    async def take(self, limit: int) -> list[tuple[int, str]]:
        return await asyncio.to_thread(self._run, lambda db: db.execute(
            "SELECT id, plaintext FROM spooled_callbacks WHERE attempts < ? ORDER BY id LIMIT ?",
            (MAX_DRAIN_ATTEMPTS, limit)).fetchall())

    async def forget(self, ids: list[int]) -> None:
        if ids:
            await asyncio.to_thread(self._write, "DELETE FROM spooled_callbacks WHERE id = ?",
                                    [(row_id,) for row_id in ids])

    async def refused(self, failures: list[tuple[int, str]]) -> None:
        await asyncio.to_thread(
            self._write, "UPDATE spooled_callbacks SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            [(error[:2000], row_id) for row_id, error in failures])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    async def _append_batch(self, events: list[InboundEvent]) -> list[bool]:
        rows = [(event.dedup_key, event.plaintext, time.time()) for event in events]

        def append(db: sqlite3.Connection) -> list[bool]:
            with db:  # one transaction: committed (and fsynced) before any caller is answered
                return [db.execute("INSERT INTO spooled_callbacks (dedup_key, plaintext, spooled_at) "
                                   "VALUES (?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING", row).rowcount == 1
                        for row in rows]

        return await asyncio.to_thread(self._run, append)

    def _write(self, sql: str, rows: list[tuple]) -> None:
        def write(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(sql, rows)

        self._run(write)

    def _run(self, work):
        with self._lock:
            if self._connection is None:
                self._connection = self._open()
            return work(self._connection)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # the 200 promises the event survives a crash
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(_SCHEMA)
        return db


class SpoolDrainer:
    """Moves spooled events into the inbox whenever the database takes them."""

    def __init__(self, spool: CallbackSpool, inbox: InboxWriter) -> None:
        self.spool = spool
        self.inbox = inbox

    async def run(self) -> None:
        delay = RETRY_MIN_SECONDS
        while True:
            try:
                moved = await self.drain_once()
            except Exception as exc:  # the database is still away: try again, less and less often
                log.warning("spool not drained yet (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            delay = RETRY_MIN_SECONDS
            if not moved:
                self.spool.added.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.spool.added.wait(), POLL_SECONDS)

    async def drain_once(self) -> int:
        """Move one batch; the number moved. Raises when the database is unavailable."""
        pending = await self.spool.pending()
        CALLBACK_SPOOL_PENDING.set(pending)
        rows = await self.spool.take(DRAIN_BATCH) if pending else []
        if not rows:
            return 0
        results = await asyncio.gather(*(self._store(plaintext) for _, plaintext in rows), return_exceptions=True)
        moved = [row_id for (row_id, _), result in zip(rows, results, strict=True)
                 if not isinstance(result, BaseException)]
        await self.spool.forget(moved)
        CALLBACK_SPOOL_DRAINED.inc(len(moved))
        refused = [(row_id, result) for (row_id, _), result in zip(rows, results, strict=True)
                   if isinstance(result, Exception) and _refused(result)]
        if refused:
            log.error("spooled callbacks refused by the database: %s", refused)
            await self.spool.refused([(row_id, f"{type(exc).__name__}: {exc}") for row_id, exc in refused])
        unavailable = [result for result in results if isinstance(result, BaseException) and not _refused(result)]
        if unavailable:
            raise unavailable[0]
        if moved:
            log.info("moved %d spooled callbacks into the inbox", len(moved))
        return len(moved)

    async def _store(self, plaintext: str) -> int | None:
        return await self.inbox.store(InboundEvent.from_xml(plaintext))


def _refused(exc: BaseException) -> bool:
    """The event itself was refused (by the database, or by a stricter parser since it was
    spooled); anything else means the database is not back yet."""
    return isinstance(exc, CallbackRejected) or (isinstance(exc, Exception) and is_bad_row(exc))


SPOOL = web.AppKey("callback_spool", CallbackSpool)


async def callback_spool(app: web.Application):
    """cleanup_ctx step: open this process's spool and drain it (first what a previous run left)."""
    from bot.services import SERVICES

    services = app[SERVICES]
    spool = CallbackSpool(default_spool_path(services.settings))
    app[SPOOL] = spool
    drainer = asyncio.create_task(SpoolDrainer(spool, services.inbox).run(), name="callback-spool-drainer")
    yield
    drainer.cancel()
    await asyncio.gather(drainer, return_exceptions=True)
    spool.close()
