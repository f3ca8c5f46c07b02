"""Core tables: the callback inbox, the job queue, admin API tokens.

Domain tables live beside their feature (bot/stores, bot/members, sop/) on the same Base.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.types import UTCDateTime

# SQLite needs BIGINT primary keys spelled INTEGER to autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict: JSON(), list: JSON()}


class InboxEvent(Base):
    """One WeCom callback, kept before it is acknowledged; handled later by a job."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(120))
    msg_type: Mapped[str] = mapped_column(String(40))
    event: Mapped[str | None] = mapped_column(String(60))
    change_type: Mapped[str | None] = mapped_column(String(60))
    user_id: Mapped[str | None] = mapped_column(String(64))
    external_user_id: Mapped[str | None] = mapped_column(String(64))
    create_time: Mapped[int] = mapped_column(BigInteger)
    plaintext: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|handled|ignored|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[dt.datetime | None]
    # Events that one dispatch handles together (a router's `coalesce` key, e.g. a 微信客服 account).
    dispatch_key: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (
        Index("ix_inbox_events_received", "received_at"),
        # Only the rows still to do: the coalesced dispatch claims them by key (claim_inbox_group).
        Index("ix_inbox_events_dispatch_key", "dispatch_key",
              sqlite_where=text("status IN ('pending', 'failed')"),
              postgresql_where=text("status IN ('pending', 'failed')")),
    )


class Job(Base):
    """A durable unit of background work; written in the transaction that causes it."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher runs first
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|dead|expired
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Transient faults in a row (database or KV unreachable): they set the back-off, not the attempts.
    faults: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)
    run_at: Mapped[float] = mapped_column(Float)  # epoch seconds: cheap to compare on any backend
    lease_until: Mapped[float | None] = mapped_column(Float)
    locked_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]

    # The claim's WHERE and ORDER BY exactly (runner.claim_statement spells status='queued' as a
    # literal, so a prepared generic plan can use it too); nothing else indexes `status` first, so no
    # statistics can talk the planner into sorting the whole backlog.
    __table_args__ = (
        Index("ix_jobs_queued", priority.desc(), run_at,
              sqlite_where=text("status = 'queued'"), postgresql_where=text("status = 'queued'")),
        Index("ix_jobs_running_lease", "lease_until",
              sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
        # Retention deletes finished jobs oldest first.
        Index("ix_jobs_finished", "finished_at",
              sqlite_where=text("finished_at IS NOT NULL"), postgresql_where=text("finished_at IS NOT NULL")),
        # The dead letters (few): /metrics counts them, the purge finds them by age.
        Index("ix_jobs_dead", "finished_at",
              sqlite_where=text("status = 'dead'"), postgresql_where=text("status = 'dead'")),
    )


class ApiToken(Base):
    """An admin API bearer token, stored as its SHA-256 (tokens are random, 256-bit)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(20))  # hq_admin|store_manager|guide|integration
    store_codes: Mapped[list] = mapped_column(default=list)
    guide_userid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
