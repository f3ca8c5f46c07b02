"""A campaign: its audience, content, benefit and life cycle (the sending itself is outreach)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId

# draft → approved → scheduled (send_at later) → sending → sent → finished; cancelled from any
# state before finished.
STATUSES = ("draft", "approved", "scheduled", "sending", "sent", "finished", "cancelled")


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    audience: Mapped[dict] = mapped_column(default=dict)
    content: Mapped[dict] = mapped_column(default=dict)
    coupon_template_code: Mapped[str | None] = mapped_column(String(32))
    send_at: Mapped[dt.datetime | None]
    attribution_days: Mapped[int] = mapped_column(Integer, default=7)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    store_codes: Mapped[list] = mapped_column(default=list)  # a store manager's campaign: its stores
    created_by: Mapped[str] = mapped_column(String(80), default="")
    approved_by: Mapped[str | None] = mapped_column(String(80))
    reminders: Mapped[list] = mapped_column(default=list)  # epoch seconds of remind calls
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[dt.datetime | None]
    launched_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    @property
    def source(self) -> str:
        return f"campaign:{self.id}"
