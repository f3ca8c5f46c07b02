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
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneHandoffCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _run(self, operation, parameters, many: bool) -> None:
        try:
            aio = self._connection
            description, rows, lastrowid, rowcount = self.await_(
                aio._execute(_run_on_sqlite_thread, aio._conn, operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
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
    __slots__ = ()

    def cursor(self, server_side: bool = False):
        return super().cursor(server_side) if server_side else OneHandoffCursor(self)


class OneHandoffDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg, **kw):
        adapted = super().connect(*arg, **kw)
        if type(adapted) is AsyncAdapt_aiosqlite_connection:
            adapted.__class__ = OneHandoffConnection
        return adapted


def one_handoff_dbapi() -> OneHandoffDBAPI:
    """The `module=` for create_async_engine on a sqlite+aiosqlite URL."""
    import sqlite3

    import aiosqlite

    return OneHandoffDBAPI(aiosqlite, sqlite3)
