"""A customer and the history of their bindings (会员归属).

`customers` holds the current attribution; `customer_bindings` keeps every binding with its start,
end and reason, so handovers and re-adds never lose history.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    avatar: Mapped[str | None] = mapped_column(String(500))
    gender: Mapped[int] = mapped_column(Integer, default=0)  # 0 unknown, 1 male, 2 female (WeCom)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    guide_userid: Mapped[str | None] = mapped_column(String(64), index=True)  # attributed guide
    store_code: Mapped[str | None] = mapped_column(String(32), index=True)
    channel_code: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10), default="bound")  # bound|unbound
    tags: Mapped[list] = mapped_column(default=list)
    first_bound_at: Mapped[dt.datetime | None]
    bound_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerBinding(Base):
    __tablename__ = "customer_bindings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(64))
    guide_userid: Mapped[str] = mapped_column(String(64))
    store_code: Mapped[str | None] = mapped_column(String(32))
    channel_code: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(30))
    qrcode_code: Mapped[str | None] = mapped_column(String(16))  # the aggregated code scanned, if known
    source: Mapped[str] = mapped_column(String(16))  # scan|direct|handover|restored
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))
    enriched_at: Mapped[dt.datetime | None]  # profile and channel tags fetched (enrich.enrich_customers)

    __table_args__ = (
        Index("ix_customer_bindings_customer", "external_userid", "started_at"),
        Index("ix_customer_bindings_guide_day", "guide_userid", "started_at"),
        Index("ix_customer_bindings_enrich_pending", "id", sqlite_where=text("enriched_at IS NULL"),
              postgresql_where=text("enriched_at IS NULL")),
    )
