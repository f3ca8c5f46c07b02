"""The audit log of admin writes: who (an API token, or a console user by id and name; the role),
what (method, path, target), when, and the answer's status. Never a body: ids name the target, so no personal data or secret is kept."""

from __future__ import annotations

import datetime as dt
import json
import logging

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from bot.api.auth import Principal, Role
from bot.api.fields import MAX_BIGINT
from bot.storage import Database
from bot.storage.db import utcnow
from bot.storage.models import Base, BigId

log = logging.getLogger("bot.api.audit")
# The keys that name what a write created or changed, in the order they are looked for in its answer.
TARGET_KEYS = ("code", "userid", "order_no", "member_no", "handover_userid", "id")


class ApiAuditEntry(Base):
    __tablename__ = "api_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    token_id: Mapped[int | None] = mapped_column(BigId)  # an API token; None for a console user
    user_id: Mapped[int | None] = mapped_column(BigId)  # a console user (bot/console)
    username: Mapped[str | None] = mapped_column(String(64))  # as it was then
    role: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    operation: Mapped[str] = mapped_column(String(200))  # the route's template: /api/v1/stores/{code}
    path: Mapped[str] = mapped_column(String(500))
    target: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_api_audit_token", "token_id", "id"), Index("ix_api_audit_user", "user_id", "id"))


def _storable(text: str) -> str:
    # A refused request's path may hold what no text column can (NUL, a lone surrogate).
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def write_target(path_params: dict[str, str], answer_text: str | None) -> str | None:
    """What the write was about: its path's ids, else the key of what it created (from its answer)."""
    if path_params:
        return ",".join(f"{name}={value}" for name, value in path_params.items())[:200]
    try:
        answer = json.loads(answer_text) if answer_text else None
    except ValueError:
        return None
    for key in TARGET_KEYS:
        if isinstance(answer, dict) and isinstance(answer.get(key), str | int):
            return f"{key}={answer[key]}"[:200]
    return None


async def record_write(db: Database, principal: Principal, method: str, operation: str, path: str,
                       target: str | None, status: int) -> None:
    """One row per admin write; a failure to record is logged, never turned into the caller's error."""
    try:
        async with db.session() as session, session.begin():
            person = principal.user_id is not None
            session.add(ApiAuditEntry(token_id=None if person else principal.token_id, user_id=principal.user_id,
                                      username=principal.username if person else None,
                                      role=principal.role.value, method=method,
                                      operation=operation, path=_storable(path)[:500],
                                      target=target and _storable(target)[:200], status=status))
    except Exception:
        log.exception("could not record %s %s in the audit log", method, path)


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: int | None = Field(None, ge=1, le=MAX_BIGINT)
    user_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="a console user's entries")
    role: Role | None = None
    before_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="page: entries older than this id")
    limit: int = Field(100, ge=1, le=1000)


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: dt.datetime
    token_id: int | None = Field(description="the API token; null for a console user")
    user_id: int | None = Field(description="the console user; null for an API token")
    username: str | None
    role: str
    method: str
    operation: str
    path: str
    target: str | None
    status: int


class AuditPage(BaseModel):
    entries: list[AuditOut]


async def audit_page(db: Database, q: AuditQuery) -> AuditPage:
    statement = select(ApiAuditEntry).order_by(ApiAuditEntry.id.desc()).limit(q.limit)
    if q.token_id:
        statement = statement.where(ApiAuditEntry.token_id == q.token_id)
    if q.user_id:
        statement = statement.where(ApiAuditEntry.user_id == q.user_id)
    if q.role:
        statement = statement.where(ApiAuditEntry.role == q.role.value)
    if q.before_id:
        statement = statement.where(ApiAuditEntry.id < q.before_id)
    async with db.session() as session:
        rows = (await session.scalars(statement)).all()
    return AuditPage(entries=[AuditOut.model_validate(row) for row in rows])
