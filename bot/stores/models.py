"""Stores, guides, channels, aggregated QR codes, contact ways, and the scan funnel.

Coordinates are stored in GCJ-02 only (bot/lbs/datum.py converts at the edges).
Opening and working hours: {"mon": ["10:00-22:00"], …, "sun": [...]} in Asia/Shanghai time;
a missing day means closed (hours) or off (guides); None means always.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    city: Mapped[str] = mapped_column(String(50), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    lat: Mapped[float | None] = mapped_column(Float)  # GCJ-02
    lng: Mapped[float | None] = mapped_column(Float)  # GCJ-02
    status: Mapped[str] = mapped_column(String(10), default="open")  # open|closed|paused
    opening_hours: Mapped[dict | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Guide(Base):
    __tablename__ = "guides"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), unique=True)  # WeCom member userid
    name: Mapped[str] = mapped_column(String(100))
    store_code: Mapped[str] = mapped_column(ForeignKey("stores.code", onupdate="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active|on_leave|resigned
    daily_add_limit: Mapped[int] = mapped_column(Integer, default=100)
    working_hours: Mapped[dict | None]
    is_backup: Mapped[bool] = mapped_column(Boolean, default=False)  # takes overflow of the store
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Channel(Base):
    """Where a customer came from (poster, package insert, receipt…) and how to greet them."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    tag_names: Mapped[list] = mapped_column(default=list)  # WeCom corp tags applied on binding
    welcome_text: Mapped[str | None] = mapped_column(Text)
    benefit_template_code: Mapped[str | None] = mapped_column(String(32))  # coupon for new members
    benefit_text: Mapped[str | None] = mapped_column(String(100))  # the benefit as the landing page says it
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QrCode(Base):
    """An aggregated code: one printed QR, resolved per scan to a nearby store and guide."""

    __tablename__ = "qrcodes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")  # internal: HQ's lists only
    public_title: Mapped[str | None] = mapped_column(String(60))  # what the customer's page says
    channel_code: Mapped[str] = mapped_column(ForeignKey("channels.code", onupdate="CASCADE"))
    radius_m: Mapped[int] = mapped_column(Integer, default=5000)
    store_rule: Mapped[str] = mapped_column(String(20), default="nearest")
    guide_rule: Mapped[str] = mapped_column(String(20), default="round_robin")  # |least_loaded|fixed
    fallback: Mapped[dict] = mapped_column(default=dict)  # {"store_code"?, "guide_userid"?}
    status: Mapped[str] = mapped_column(String(10), default="active")  # active|disabled
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContactWay(Base):
    """The WeCom 联系我 of one guide for one channel; its `state` identifies channel and store."""

    __tablename__ = "contact_ways"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    guide_userid: Mapped[str] = mapped_column(String(64))
    channel_code: Mapped[str] = mapped_column(String(32))
    store_code: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(30), unique=True)
    config_id: Mapped[str | None] = mapped_column(String(64))
    qr_code: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("guide_userid", "channel_code", name="uq_contact_ways_guide_channel"),)


class FunnelEvent(Base):
    """scan → locate → choose → add, per code, channel, store and guide."""

    __tablename__ = "funnel_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    step: Mapped[str] = mapped_column(String(10))  # scan|locate|choose|add
    qrcode_code: Mapped[str | None] = mapped_column(String(16))
    channel_code: Mapped[str | None] = mapped_column(String(32))
    store_code: Mapped[str | None] = mapped_column(String(32))
    guide_userid: Mapped[str | None] = mapped_column(String(64))
    visitor: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    # at alone: the console's dashboard reads every step of a date range (bench/console_api.py).
    __table_args__ = (Index("ix_funnel_events_step_at", "step", "at"), Index("ix_funnel_events_at", "at"))
