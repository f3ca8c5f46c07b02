from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.storage.sqlite_driver import BUSY_TIMEOUT_MS, CONNECT_ARGS, one_handoff_dbapi


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue, not fail.
    # The driver must not emit its own BEGIN: _sqlite_begin does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


READ_ONLY = "wecom_read_only"  # execution option: the connection only reads (see Database.reading)


def _sqlite_begin(connection) -> None:
    # A deferred transaction that reads, then writes after another writer committed, fails at once
    # with SQLITE_BUSY (busy_timeout does not apply); taking the write lock up front makes it wait.
    # A read-only one never writes, so it must not queue behind (or hold up) the writers.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


_ASYNCPG_BROKEN = ("another operation is in progress", "connection is closed", "connection was closed",
                   "underlying connection is closed", "cannot perform operation")


def error_causes(error: BaseException | None):
    """The error, then its causes (a driver's original error, raise … from, during handling), each once."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        # `raise … from None` says the error being handled is not a cause (the WeCom client hides
        # aiohttp's connection errors that way): follow the context only where Python shows it.
        context = None if error.__suppress_context__ else error.__context__
        error = getattr(error, "orig", None) or error.__cause__ or context


def is_broken_connection(error: BaseException) -> bool:
    """The database connection itself is unusable (refused, reset, closed, or left mid-operation)."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - the SQLite-only build
        asyncpg = None
    for cause in error_causes(error):
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
        if asyncpg is not None and isinstance(
            cause, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError | asyncpg.AdminShutdownError
            | asyncpg.CrashShutdownError
        ):
            return True
        # asyncpg's InterfaceError also covers bad arguments (DataError): only its connection states.
        if asyncpg is not None and isinstance(cause, asyncpg.InterfaceError) and any(
            state in str(cause) for state in _ASYNCPG_BROKEN
        ):
            return True
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return True
    return False


def _discard_broken_connection(context) -> None:
    # asyncpg reports a connection left mid-operation ("another operation is in progress") or cut
    # by the network as an ordinary error on a connection it thinks is open; SQLAlchemy would put
    # it back in the pool for the next caller to trip over. Invalidate just that connection.
    if not context.is_disconnect and is_broken_connection(context.original_exception):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


class Database:
    """The engine and session factory; one per process."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection: SQLite has one writer anyway, and waiting for the pool is an asyncio
            # wait, whereas waiting on SQLite's lock is busy_timeout's sleep-and-poll (up to 100 ms).
            # aiosqlite, one trip to its thread per statement (bot/storage/sqlite_driver.py).
            driver = ({"module": one_handoff_dbapi(), "connect_args": CONNECT_ARGS}
                      if url.startswith("sqlite+aiosqlite") else {})
            self.engine: AsyncEngine = create_async_engine(
                url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True, **driver
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            self.engine = create_async_engine(
                url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=5,
                hide_parameters=True,  # errors must not carry callback plaintext or tokens into logs
            )
            event.listen(self.engine.sync_engine, "handle_error", _discard_broken_connection)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Same pool; on SQLite its transactions start with a plain (deferred) BEGIN.
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self.read_sessions = async_sessionmaker(self._reader, expire_on_commit=False)

    def insert(self, table):
        """A dialect INSERT that supports on_conflict_do_nothing()."""
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    def session(self) -> AsyncSession:
        return self.sessions()

    def read_session(self) -> AsyncSession:
        """A session for reads only: on SQLite it does not take the write lock (a write through
        it may fail with SQLITE_BUSY instead of waiting)."""
        return self.read_sessions()

    def reading(self) -> AsyncConnection:
        """A Core connection for reads only (`async with db.reading() as conn`); see read_session."""
        return self._reader.connect()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 3)
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
