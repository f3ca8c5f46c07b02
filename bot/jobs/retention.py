"""Retention: finished jobs and handled inbox rows are deleted after an age, in batches.

Dead letters stay until someone retries them or purges them (`wecom-assistant jobs purge`).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, literal_column, select

from bot.jobs.cron import cron
from bot.jobs.registry import JobContext, Priority, tasks
from bot.storage.db import utcnow
from bot.storage.models import InboxEvent, Job

log = logging.getLogger("bot.jobs")

RETENTION_JOB = "jobs.retention"
BATCH_ROWS = 5000  # one short statement each: the queue keeps moving between them
FINISHED = (literal_column("'done'"), literal_column("'expired'"))
SETTLED_INBOX = (literal_column("'handled'"), literal_column("'ignored'"))


async def _delete_in_batches(db, table, condition, batch: int) -> int:
    deleted = 0
    while True:
        ids = select(table.id).where(condition).limit(batch).scalar_subquery()
        async with db.session() as session, session.begin():
            count = (await session.execute(
                delete(table).where(table.id.in_(ids)).execution_options(synchronize_session=False))).rowcount
        deleted += count
        if count < batch:
            return deleted


async def prune_finished(db, *, jobs_older_than: dt.timedelta, inbox_older_than: dt.timedelta,
                         batch: int = BATCH_ROWS, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete done and expired jobs and handled or ignored inbox rows older than the given ages."""
    now = now or utcnow()
    jobs = await _delete_in_batches(
        db, Job, (Job.finished_at < now - jobs_older_than) & Job.status.in_(FINISHED), batch)
    inbox = await _delete_in_batches(
        db, InboxEvent, (InboxEvent.received_at < now - inbox_older_than) & InboxEvent.status.in_(SETTLED_INBOX),
        batch)
    return {"jobs_deleted": jobs, "inbox_deleted": inbox}


async def purge_dead_jobs(db, *, job_ids: list[int] | None = None, older_than: dt.timedelta | None = None,
                          now: dt.datetime | None = None, batch: int = BATCH_ROWS) -> int:
    """Delete dead letters by id, or those dead longer than `older_than`; how many went."""
    if job_ids is None and older_than is None:
        raise ValueError("name the dead jobs to purge: by id or by age")
    condition = Job.status == literal_column("'dead'")
    if job_ids is not None:
        condition &= Job.id.in_(job_ids)
    if older_than is not None:
        condition &= Job.finished_at < (now or utcnow()) - older_than
    return await _delete_in_batches(db, Job, condition, batch)


@tasks(RETENTION_JOB, priority=Priority.LOW, timeout=3600)
async def prune_finished_job(ctx: JobContext, payload: dict) -> None:
    settings = ctx.services.settings
    result = await prune_finished(
        ctx.services.db,
        jobs_older_than=dt.timedelta(days=settings.job_retention_days),
        inbox_older_than=dt.timedelta(days=settings.inbox_retention_days),
        batch=settings.retention_batch_rows,
    )
    log.info("retention: %s", result)


RETENTION_CRON = cron("retention", "30 4 * * *", RETENTION_JOB)  # nightly, after the members' housekeeping
