"""Operator endpoints: what WeCom sent (the inbox) and the job queue, with dead-letter retry."""

from __future__ import annotations

import datetime as dt
import time

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from bot.api.audit import AuditPage, AuditQuery, audit_page
from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.fields import MAX_BIGINT
from bot.api.spec import ApiCall, api
from bot.storage.models import InboxEvent, Job


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=500)
    status: str | None = Field(None, pattern="^(pending|handled|ignored|failed)$")
    before_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="page: events older than this id")


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    msg_type: str
    event: str | None
    change_type: str | None
    user_id: str | None
    external_user_id: str | None
    create_time: int
    status: str
    attempts: int
    last_error: str | None
    received_at: dt.datetime
    handled_at: dt.datetime | None


class EventPage(BaseModel):
    events: list[EventOut]


@api.route("GET", "/api/v1/events", summary="Received callbacks, newest first", roles=[Role.HQ_ADMIN],
           query=EventsQuery, response=EventPage)
async def list_events(call: ApiCall) -> EventPage:
    q: EventsQuery = call.query
    statement = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(q.limit)
    if q.status:
        statement = statement.where(InboxEvent.status == q.status)
    if q.before_id:
        statement = statement.where(InboxEvent.id < q.before_id)
    async with call.services.db.session() as session:
        rows = (await session.scalars(statement)).all()
    return EventPage(events=[EventOut.model_validate(row) for row in rows])


class JobsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(queued|running|done|dead|expired)$")
    kind: str | None = None
    limit: int = Field(50, ge=1, le=500)


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    payload: dict
    status: str
    attempts: int
    max_attempts: int
    run_at: float
    last_error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class JobPage(BaseModel):
    jobs: list[JobOut]


@api.route("GET", "/api/v1/jobs", summary="Jobs, newest first (status=dead: the dead letters)",
           roles=[Role.HQ_ADMIN], query=JobsQuery, response=JobPage)
async def list_jobs(call: ApiCall) -> JobPage:
    q: JobsQuery = call.query
    async with call.services.db.session() as session:
        rows = (await session.scalars(select_jobs(q.status, q.kind, q.limit))).all()
    return JobPage(jobs=[JobOut.model_validate(row) for row in rows])


def select_jobs(status: str | None, kind: str | None, limit: int):
    statement = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        statement = statement.where(Job.status == status)
    if kind:
        statement = statement.where(Job.kind == kind)
    return statement


async def retry_dead_job(db, job_id: int) -> bool:
    """Put a dead job back in the queue with fresh attempts; False if it is not dead."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(Job).where(Job.id == job_id, Job.status == "dead")
            .values(status="queued", attempts=0, run_at=time.time(), lease_until=None, locked_by=None,
                    finished_at=None)
            .returning(Job.id)
        )
        return result.scalar_one_or_none() is not None


@api.route("GET", "/api/v1/audit", summary="Admin writes, newest first: who, role, method, path, target, status",
           roles=[Role.HQ_ADMIN], query=AuditQuery, response=AuditPage)
async def list_audit(call: ApiCall) -> AuditPage:
    return await audit_page(call.services.db, call.query)


class JobPath(BaseModel):
    job_id: int = Field(ge=1, le=MAX_BIGINT)


@api.route("POST", "/api/v1/jobs/{job_id}/retry", summary="Retry a dead-lettered job",
           roles=[Role.HQ_ADMIN], path_model=JobPath, response=JobOut)
async def retry_job(call: ApiCall) -> JobOut:
    job_id = call.params.job_id
    if not await retry_dead_job(call.services.db, job_id):
        raise ApiError(409, "not_dead", f"job {job_id} does not exist or is not dead")
    async with call.services.db.session() as session:
        job = await session.get(Job, job_id)
    call.services.wake_runner()
    return JobOut.model_validate(job)
