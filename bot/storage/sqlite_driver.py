"""aiosqlite with one thread hand-off per statement.

SQLAlchemy's aiosqlite adapter makes three or four trips to aiosqlite's thread for every
statement (open a cursor, execute, fetch, close), each a future, a queue put and a loop wake-up.
This cursor does the four in one function on that thread. The hand-offs were a large share of
the embedded service's CPU per customer add; sqlite3 itself is a small one.
"""

from __future__ import annotations

from collections import deque

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)


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
            description, rows, lastrowid, rowcount, in_transaction = self.await_(
                aio._execute(_run_on_sqlite_thread, aio._conn, operation, parameters, many))
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
        super().commit()
        self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False


class OneHandoffDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg, **kw):
        adapted = super().connect(*arg, **kw)
        if type(adapted) is AsyncAdapt_aiosqlite_connection:
            adapted = OneHandoffConnection(self, adapted._connection)
        return adapted


def one_handoff_dbapi() -> OneHandoffDBAPI:
    """The `module=` for create_async_engine on a sqlite+aiosqlite URL."""
    import sqlite3

    import aiosqlite

    return OneHandoffDBAPI(aiosqlite, sqlite3)
