"""The customer-tag mirror's table (see bot/customers/tag_mirror.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId


class CustomerTag(Base):
    """One corp tag one guide put on one customer (WeCom keeps tags per friendship)."""

    __tablename__ = "customer_tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(64))
    guide_userid: Mapped[str] = mapped_column(String(64))
    tag_id: Mapped[str] = mapped_column(String(64))
    tag_name: Mapped[str] = mapped_column(String(60))
    synced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_customer_tags_name_customer", "tag_name", "external_userid"),
        Index("ix_customer_tags_customer", "external_userid", "guide_userid"),
        Index("ix_customer_tags_tag", "tag_id"),
    )
