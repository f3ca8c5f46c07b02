"""SOP tables: templates and their versions, enrolments, one run per (enrolment, step), and one
item per (template version, step, slot, guide) — the unit a guide pushes or completes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId
from sop.outreach.models import RefId


class SopTemplate(Base):
    __tablename__ = "sop_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), default="active")  # active|paused
    version: Mapped[int] = mapped_column(Integer, default=1)  # the version new enrolments get
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # events before it never enrol
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    scanned_until: Mapped[dt.datetime | None]  # the clock of the last enrolment scan (catch-up after downtime)


class SopVersion(Base):
    __tablename__ = "sop_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("code", "version", name="uq_sop_versions_code_version"),)


class SopEnrolment(Base):
    """A customer entered a template (one version) on one trigger occurrence (trigger_key)."""

    __tablename__ = "sop_enrolments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    trigger_key: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[int] = mapped_column(RefId)
    external_userid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(RefId)
    anchor_at: Mapped[dt.datetime]  # when the trigger happened: step offsets count from here
    stage: Mapped[str | None] = mapped_column(String(16))  # at enrolment (exit on stage_changed)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active|exited|finished
    exit_reason: Mapped[str | None] = mapped_column(String(30))
    exited_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("code", "external_userid", "trigger_key", name="uq_sop_enrolments_occurrence"),)


class SopRun(Base):
    """One step for one enrolled customer."""

    __tablename__ = "sop_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(RefId)
    code: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    step_key: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[dt.datetime]
    # waiting → queued (in a guide's item) | planning (inside the pass that plans its group send)
    # → sent (in an outreach) | done (guide_task) | skipped | exited
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    reason: Mapped[str | None] = mapped_column(String(60))
    item_id: Mapped[int | None] = mapped_column(RefId)
    external_userid: Mapped[str] = mapped_column(String(64))
    guide_userid: Mapped[str | None] = mapped_column(String(64))
    store_code: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("enrolment_id", "step_key", name="uq_sop_runs_step"),
                      Index("ix_sop_runs_due", "status", "due_at"),
                      Index("ix_sop_runs_item", "item_id"))


class SopItem(Base):
    """One step's due customers of one guide in one slot: one group send or one task list entry."""

    __tablename__ = "sop_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    step_key: Mapped[str] = mapped_column(String(32))
    slot: Mapped[str] = mapped_column(String(16))  # the local day the step was due, YYYY-MM-DD
    guide_userid: Mapped[str] = mapped_column(String(64))
    store_code: Mapped[str | None] = mapped_column(String(32))
    reach: Mapped[str] = mapped_column(String(12))  # group_send|guide_push|guide_task
    # waiting (the guide's action) → pushed (group send planned) | done (tasks marked) | cancelled
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    customers: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[dt.datetime]
    deadline_at: Mapped[dt.datetime]  # end of the step's window: a push after it is refused
    source: Mapped[str | None] = mapped_column(String(40))  # the outreach plan, once pushed
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acted_at: Mapped[dt.datetime | None]

    __table_args__ = (UniqueConstraint("code", "version", "step_key", "slot", "guide_userid", name="uq_sop_items_slot"),
                      Index("ix_sop_items_guide", "guide_userid", "status"))
