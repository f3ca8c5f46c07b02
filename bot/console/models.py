"""Console users (people, not integrations) and their sign-in sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId


class ConsoleUser(Base):
    """A person who signs in to the console; the role and stores map to the API's Principal."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # hq_admin|store_manager
    store_codes: Mapped[list] = mapped_column(default=list)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)  # consecutive wrong passwords
    locked_until: Mapped[dt.datetime | None]
    disabled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None]


class ConsoleSession(Base):
    """A signed-in browser: the cookie's SHA-256, its CSRF token and when it stops working."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_console_sessions_user", "user_id"),)
