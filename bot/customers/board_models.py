"""The PK board's tallies of settled days (bot/customers/board.py): per (day, guide, store), and per
guide over all stores by day and by complete week, each ranked from an index.

The tables were first declared in bot/stores/models.py (migrations 0015, 0016); the board ranks
guides by their customers' adds and losses, so it lives with the bindings, in the customers feature.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId


class GuideBoardDay(Base):
    """A settled day whose PK board tallies are in guide_board_tallies (bot/customers/board.py)."""

    __tablename__ = "guide_board_days"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)  # the corp time zone the days are in
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    tallied_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GuideBoardTally(Base):
    """Adds and losses of one guide's bindings of one store on one settled day."""

    __tablename__ = "guide_board_tallies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    day: Mapped[dt.date]
    guide_userid: Mapped[str] = mapped_column(String(64))
    store_code: Mapped[str | None] = mapped_column(String(32))  # the binding's store, as the board keys it
    added: Mapped[int] = mapped_column(Integer)
    lost: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_guide_board_tallies_day", "zone", "day"),)


# Code-point order on PostgreSQL, as Python sorts (SQLite compares bytes already): the board's tie-break.
BoardUserid = String(64).with_variant(String(64, collation="C"), "postgresql")


class GuideBoardGuideDay(Base):
    """One guide's adds and losses on one settled day over all stores: the unfiltered board, read
    per day in rank order straight from its index (the per-store rows serve store filters)."""

    __tablename__ = "guide_board_guide_days"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    guide_userid: Mapped[str] = mapped_column(BoardUserid, primary_key=True)
    add_store: Mapped[str | None] = mapped_column(String(32))  # the greatest store of the day's adds
    any_store: Mapped[str | None] = mapped_column(String(32))  # the greatest store of any row
    added: Mapped[int] = mapped_column(Integer)
    lost: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_guide_board_guide_days_rank", "zone", "day", added.desc(), "lost", "guide_userid"),)


class GuideBoardGuideWeek(Base):
    """The same per guide for an ISO week (`day`: its Monday) all of whose days are tallied."""

    __tablename__ = "guide_board_guide_weeks"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    guide_userid: Mapped[str] = mapped_column(BoardUserid, primary_key=True)
    add_store: Mapped[str | None] = mapped_column(String(32))
    any_store: Mapped[str | None] = mapped_column(String(32))
    added: Mapped[int] = mapped_column(Integer)
    lost: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_guide_board_guide_weeks_rank", "zone", "day", added.desc(), "lost", "guide_userid"),)
