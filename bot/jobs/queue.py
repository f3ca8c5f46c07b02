from __future__ import annotations

import time

from sqlalchemy.dialects import postgresql, sqlite

from bot.jobs.registry import tasks
from bot.jobs.wakeup import notify_workers
from bot.storage.db import utcnow
from bot.storage.models import Job


def job_row(
    kind: str,
    payload: dict | None = None,
    *,
    dedupe_key: str | None = None,
    delay: float = 0.0,
    run_at: float | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
) -> dict:
    """Every column of a new `jobs` row; priority and attempts default to what the kind declared.

    A plain dict, so a list of them is one bulk INSERT on a bare Core connection (`insert_jobs`).
    """
    options = tasks.options(kind)
    return {
        "kind": kind,
        "payload": payload or {},
        "dedupe_key": dedupe_key[:200] if dedupe_key else None,
        "priority": int(options.priority if priority is None else priority),
        "status": "queued",
        "attempts": 0,
        "faults": 0,
        "max_attempts": options.max_attempts if max_attempts is None else max_attempts,
        "run_at": run_at if run_at is not None else time.time() + delay,
        "lease_until": None,
        "locked_by": None,
        "last_error": None,
        "created_at": utcnow(),
        "finished_at": None,
    }


def _insert(bind_or_session):
    bind = bind_or_session.get_bind() if hasattr(bind_or_session, "get_bind") else bind_or_session
    return (sqlite.insert if bind.dialect.name == "sqlite" else postgresql.insert)(Job)


async def insert_jobs(connection, rows: list[dict], notify: bool = True) -> list[int]:
    """Insert rows from `job_row` in one statement (a Session or a Core connection, inside the
    caller's transaction), skipping existing dedupe keys; the new ids, and workers are woken
    (`notify=False`: not, for jobs not due yet — the workers' poll finds them)."""
    if not rows:
        return []
    statement = _insert(connection).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Job.id)
    ids = list((await connection.execute(statement, rows)).scalars())
    if ids and notify:
        await notify_workers(connection)
    return ids


async def enqueue(connection, kind: str, payload: dict | None = None, **options) -> bool:
    """Add a job inside the caller's transaction; False when `dedupe_key` already exists.

    Options are `job_row`'s; priority and max_attempts default to the kind's registration.
    """
    return bool(await insert_jobs(connection, [job_row(kind, payload, **options)]))
