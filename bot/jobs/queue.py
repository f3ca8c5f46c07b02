from __future__ import annotations

import time

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs.wakeup import notify_workers
from bot.storage.models import Job


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict | None = None,
    *,
    dedupe_key: str | None = None,
    delay: float = 0.0,
    run_at: float | None = None,
    priority: int = 0,
    max_attempts: int = 6,
) -> bool:
    """Add a job inside the caller's transaction; False when `dedupe_key` already exists."""
    dialect = session.get_bind().dialect.name
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = (
        insert(Job)
        .values(
            kind=kind,
            payload=payload or {},
            dedupe_key=dedupe_key,
            priority=priority,
            status="queued",
            attempts=0,
            max_attempts=max_attempts,
            run_at=run_at if run_at is not None else time.time() + delay,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Job.id)
    )
    added = (await session.execute(statement)).scalar_one_or_none() is not None
    if added:
        await notify_workers(session)
    return added
