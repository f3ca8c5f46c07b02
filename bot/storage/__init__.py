"""Relational storage: SQLAlchemy 2 async on SQLite (embedded default) or PostgreSQL."""

from bot.storage.db import Database, utcnow

__all__ = ["Database", "utcnow"]
