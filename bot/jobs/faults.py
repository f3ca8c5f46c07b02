"""Which errors are transient faults: the database or the KV store cannot be reached right now.

A job that meets one is tried again with back-off without spending an attempt, until it succeeds or
its deadline passes: an outage must not dead-letter work that would succeed a minute later.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

from bot.kv import KVUnavailable
from bot.storage.db import error_causes, is_broken_connection

_SQLITE_BUSY = ("database is locked", "database is busy")


def is_transient_fault(error: BaseException) -> bool:
    """True for an unreachable KV store or database, a full pool, or SQLite's busy lock."""
    if is_broken_connection(error):
        return True
    for cause in error_causes(error):
        if isinstance(cause, KVUnavailable | sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True
        if isinstance(cause, sqlite3.OperationalError) and str(cause).startswith(_SQLITE_BUSY):
            return True
    return False
