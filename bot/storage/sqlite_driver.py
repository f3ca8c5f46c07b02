"""aiosqlite with one thread hand-off per statement.

SQLAlchemy's aiosqlite adapter makes three or four trips to aiosqlite's thread for every
statement (open a cursor, execute, fetch, close), each a future, a queue put and a loop wake-up.
This cursor does the four in one function on that thread. The hand-offs were a large share of
the embedded service's CPU per customer add; sqlite3 itself is a small one.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

BUSY_TIMEOUT_MS = 10_000  # a writer queues behind another process's write lock this long

# Set on hot paths whose statements are short indexed reads and writes (the intake, job claims,
# quick jobs): their statements run on the event loop's thread itself. A trip to aiosqlite's
# thread (a future, a queue, a wake-up of the loop) costs more than such a statement. The pool
# has one connection, so nothing in this process holds SQLite's lock while we would wait for it;
# a BEGIN IMMEDIATE that finds another process's lock goes to the thread to wait there.
_ON_LOOP_THREAD: ContextVar[bool] = ContextVar("sqlite_on_loop_thread", default=False)


@contextmanager
def statements_on_loop_thread() -> Iterator[None]:
    """Within this block (and tasks it starts), SQLite statements skip aiosqlite's thread."""
    token = _ON_LOOP_THREAD.set(True)
    try:
        yield
    finally:
        _ON_LOOP_THREAD.reset(token)


async def _done() -> None:
    return None


def _is_locked(error: Exception) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _begin_without_waiting(connection, operation, parameters, many: bool):
    """BEGIN IMMEDIATE that fails at once, rather than sleeping on the loop, when the lock is taken."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        return _run_on_sqlite_thread(connection, operation, parameters, many)
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _run_on_sqlite_thread(connection, operation, parameters, many: bool):
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.lastrowid, cursor.rowcount, connection.in_transaction
    finally:
        cursor.close()


class OneHandoffCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _run(self, operation, parameters, many: bool) -> None:
        try:
            aio = self._connection
            result = None
            if _ON_LOOP_THREAD.get():
                run = _begin_without_waiting if operation == "BEGIN IMMEDIATE" else _run_on_sqlite_thread
                try:
                    result = run(aio._conn, operation, parameters, many)
                except sqlite3.OperationalError as error:
                    if not (run is _begin_without_waiting and _is_locked(error)):
                        raise
                # SQLAlchemy's async execute insists on one await inside it: an immediate one.
                self.await_(_done())
            if result is None:  # off the hot path, or waiting for another process's write lock
                result = self.await_(aio._execute(_run_on_sqlite_thread, aio._conn, operation, parameters, many))
            description, rows, lastrowid, rowcount, in_transaction = result
        except Exception as error:
            self._adapt_connection.in_transaction = True  # unknown: let a rollback go through
            self._adapt_connection._handle_exception(error)
        self._adapt_connection.in_transaction = in_transaction
        if description:  # as SQLAlchemy's adapter: rows buffered, no rowcount
            self.description, self.lastrowid, self.rowcount = description, -1, -1
            self._rows = deque(rows)
        else:
            self.description, self.lastrowid, self.rowcount = None, lastrowid, rowcount

    def execute(self, operation, parameters=None) -> None:
        self._run(operation, parameters, False)

    def executemany(self, operation, seq_of_parameters) -> None:
        self._run(operation, seq_of_parameters, True)
        self.description = None


class OneHandoffConnection(AsyncAdapt_aiosqlite_connection):
    """Knows whether SQLite is inside a transaction (every statement reports it from the thread),
    so the ROLLBACK that the pool sends with every connection it takes back, nearly always after
    a COMMIT, costs no trip to the thread when there is nothing to roll back."""

    __slots__ = ("in_transaction",)

    def __init__(self, dbapi, connection) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = True  # unknown until the first statement

    def cursor(self, server_side: bool = False):
        if server_side:
            self.in_transaction = True  # its statements run outside this bookkeeping
            return super().cursor(server_side)
        return OneHandoffCursor(self)

    def execute(self, *args, **kw):
        self.in_transaction = True  # aiosqlite's own execute: its effect is not reported
        return super().execute(*args, **kw)

    def commit(self) -> None:
        if _ON_LOOP_THREAD.get():
            self._on_loop_thread("commit")
        else:
            super().commit()
        self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            if _ON_LOOP_THREAD.get():
                self._on_loop_thread("rollback")
            else:
                super().rollback()
            self.in_transaction = False

    def _on_loop_thread(self, operation: str) -> None:
        try:
            getattr(self._connection._conn, operation)()
        except Exception as error:
            self._handle_exception(error)


class OneHandoffDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg, **kw):
        adapted = super().connect(*arg, **kw)
        if type(adapted) is AsyncAdapt_aiosqlite_connection:
            adapted = OneHandoffConnection(self, adapted._connection)
        return adapted


def one_handoff_dbapi() -> OneHandoffDBAPI:
    """The `module=` for create_async_engine on a sqlite+aiosqlite URL (with `connect_args=CONNECT_ARGS`)."""
    import aiosqlite

    return OneHandoffDBAPI(aiosqlite, sqlite3)


# sqlite3 checks that a connection is used by the thread that opened it (aiosqlite's); the loop's
# thread uses it too, never at the same time (one pooled connection, one statement at a time).
CONNECT_ARGS = {"check_same_thread": False}
