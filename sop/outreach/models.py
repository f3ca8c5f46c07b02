"""Outreach tables: a plan per source (a campaign, an SOP step), its per-guide sends (one WeCom
task per guide and chunk), one row per customer, and the per-customer ledger the caps read."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId

RefId = BigInteger().with_variant(Integer(), "sqlite")


class OutreachPlan(Base):
    """What a source sends: one text (with per-sender placeholders) and an optional coupon."""

    __tablename__ = "outreach_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40), unique=True)  # campaign:12, sop:3:1
    title: Mapped[str] = mapped_column(String(100), default="")  # named in the guides' notice
    content: Mapped[dict] = mapped_column(default=dict)  # {"text", "attachments"}
    coupon_template_code: Mapped[str | None] = mapped_column(String(32))
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="planned")  # planned|sending|sent|cancelled|finished
    planned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]  # every task created
    last_change_at: Mapped[dt.datetime | None]  # results last moved (finish when idle long enough)
    synced_at: Mapped[dt.datetime | None]
    sync_runs: Mapped[int] = mapped_column(Integer, default=0)


class OutreachSend(Base):
    """One WeCom group-send task: one guide, one chunk of ≤ 10,000 of their customers."""

    __tablename__ = "outreach_sends"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    guide_userid: Mapped[str] = mapped_column(String(64))
    chunk: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # planned → creating (the call may be in flight) → created | failed | cancelled
    status: Mapped[str] = mapped_column(String(10), default="planned")
    msgid: Mapped[str | None] = mapped_column(String(64))
    creating_since: Mapped[float | None] = mapped_column(Float)  # epoch seconds of the first add_msg_template attempt
    task_status: Mapped[int] = mapped_column(Integer, default=0)  # WeCom: 0 not sent, 2 sent by the guide
    confirmed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "guide_userid", "chunk", name="uq_outreach_sends_key"),
        Index("ix_outreach_sends_source_status", "source", "status"),
    )


class OutreachRecipient(Base):
    """One customer of one source: why they were (not) sent, the coupon, what WeCom reported."""

    __tablename__ = "outreach_recipients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(RefId)
    external_userid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(RefId)
    guide_userid: Mapped[str | None] = mapped_column(String(64))  # the sender (after handovers)
    store_code: Mapped[str | None] = mapped_column(String(32))
    chunk: Mapped[int | None] = mapped_column(Integer)
    # held_out | planned | pending | sent | not_friend | over_cap | failed | skipped | cancelled
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(60))
    coupon_code: Mapped[str | None] = mapped_column(String(24))
    sent_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("source", "external_userid", name="uq_outreach_recipients_customer"),
        Index("ix_outreach_recipients_send", "source", "guide_userid", "chunk"),
        Index("ix_outreach_recipients_status", "source", "status", "id"),
    )


class OutreachLedger(Base):
    """A customer was planned a group send: what the per-day and per-week caps count."""

    __tablename__ = "outreach_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_outreach_ledger_customer_at", "external_userid", "at"),
                      Index("ix_outreach_ledger_at", "at"))
