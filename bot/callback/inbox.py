"""The durable inbox: a callback is written here (with its dispatch job) before WeCom gets a 200."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update

from bot.dispatcher import EventContext
from bot.dispatcher.middleware import AlreadyHandled, claim_inbox_row, customer_lock_for, customer_of
from bot.dispatcher.router import IntakeJob
from bot.jobs import JobContext, Priority, job_row, tasks
from bot.jobs.wakeup import notify_workers, wake_local_runners
from bot.storage import Database, utcnow
from bot.storage.batching import GroupCommit
from bot.storage.models import InboxEvent, Job
from bot.storage.sqlite_driver import statements_on_loop_thread
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.inbox")

DISPATCH_JOB = "inbox.dispatch"
_INBOX = InboxEvent.__table__



def _urgent_jobs(intake: list[IntakeJob], event: InboundEvent) -> list[dict]:
    """The rows of the jobs that routers declared `at_intake` for this event."""
    return [job for job in (make(event) for make in intake) if job is not None]


def is_bad_row(exc: Exception) -> bool:
    """The database refused the data (a constraint, a value out of range), not the connection."""
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):  # OperationalError, InterfaceError: the database itself
        return False
    return isinstance(exc, sa_exc.StatementError | ValueError | TypeError | OverflowError | KeyError)


@dataclass(frozen=True)
class _Keep:
    """An event with its inbox row and intake jobs, built before it joins a batch."""

    event: InboundEvent
    row: dict
    urgent_jobs: list[dict]


class InboxWriter:
    """Keeps callbacks in the inbox by group commit (see GroupCommit): one transaction per burst."""

    def __init__(self, db: Database, max_batch: int = 200, priority: Priority | None = None,
                 intake: list[IntakeJob] | None = None) -> None:
        self.db = db
        self.priority = priority  # None: the dispatch job's declared priority
        self.intake = list(intake or [])  # the routers' `at_intake` declarations
        # A batch that one bad row fails is written again row by row: the others are still kept.
        self._batches = GroupCommit(self._write_batch, max_batch, retry_alone=is_bad_row)

    async def store(self, event: InboundEvent) -> int | None:
        """Keep the event and queue its dispatch; the inbox id, or None for a duplicate."""
        # Built here, outside the batch: an event that cannot become a row fails only its caller.
        keep = _Keep(event, _inbox_row(event), _urgent_jobs(self.intake, event))
        return await self._batches.submit(keep)

    async def _write_batch(self, batch: list[_Keep]) -> list[int | None]:
        ids = await self._write(batch)
        if ids:
            wake_local_runners()
        seen: set[str] = set()
        results = []
        for keep in batch:  # WeCom's concurrent retries can land in one batch: the first wins
            key = keep.event.dedup_key
            results.append(ids.get(key) if key not in seen else None)
            seen.add(key)
        return results

    async def _write(self, batch: list[_Keep]) -> dict[str, int]:
        unique = {keep.event.dedup_key: keep for keep in reversed(batch)}
        # Core on a bare connection: this is the hot path, the ORM session adds nothing here.
        with statements_on_loop_thread():
            return await self._insert(unique)

    async def _insert(self, unique: dict[str, _Keep]) -> dict[str, int]:
        async with self.db.engine.begin() as conn:
            inserted = await conn.execute(
                self.db.insert(InboxEvent)
                .on_conflict_do_nothing(index_elements=["dedup_key"])
                .returning(InboxEvent.id, InboxEvent.dedup_key),
                [keep.row for keep in unique.values()],
            )
            ids = {key: inbox_id for inbox_id, key in inserted.all()}
            if ids:
                await conn.execute(Job.__table__.insert(), [
                    job_row(DISPATCH_JOB, dispatch_payload(inbox_id, unique[key].event),
                            dedupe_key=f"inbox:{inbox_id}", priority=self.priority)
                    for key, inbox_id in ids.items()
                ])
                urgent = [job for key in ids for job in unique[key].urgent_jobs]
                if urgent:
                    await conn.execute(
                        self.db.insert(Job).on_conflict_do_nothing(index_elements=["dedupe_key"]), urgent)
                await notify_workers(conn)
        return ids


def _inbox_row(event: InboundEvent) -> dict:
    def clip(value: str | None, size: int) -> str | None:
        return value[:size] if value else None

    return {
        "dedup_key": event.dedup_key,
        "kind": event.kind[:120],
        "msg_type": event.msg_type[:40],
        "event": clip(event.event, 60),
        "change_type": clip(event.change_type, 60),
        "user_id": clip(event.user_id, 64),
        "external_user_id": clip(event.external_user_id, 64),
        "create_time": event.create_time,
        "plaintext": event.plaintext,
        "status": "pending",
        "attempts": 0,
        "received_at": utcnow(),
    }


def dispatch_payload(inbox_id: int, event: InboundEvent) -> dict:
    """The dispatch job's payload: the inbox id and the customer whose events must not race (the
    lock key, so the job can lock before it opens the transaction that reads the row)."""
    return {"inbox_id": inbox_id, "customer": customer_of(event)}


@tasks(DISPATCH_JOB, priority=Priority.HIGH, quick=True)
async def dispatch_inbox_event(job: JobContext, payload: dict) -> None:
    services = job.services
    inbox_id = payload["inbox_id"]
    if "customer" in payload:
        return await _dispatch_in_one_transaction(job, inbox_id, payload["customer"])
    # Queued before the lock key travelled with the job: read the row first.
    # A plain read on a read-only connection (no ORM object, no SQLite write lock); the handler's
    # transaction claims the row again (bot/dispatcher/middleware.py), so a stale status is harmless.
    async with services.db.reading() as conn:
        row = (await conn.execute(
            select(_INBOX.c.status, _INBOX.c.plaintext).where(_INBOX.c.id == inbox_id))).first()
    if row is None or row.status in ("handled", "ignored"):
        return
    event = InboundEvent.from_xml(row.plaintext)
    ctx = EventContext(event=event, inbox_id=inbox_id, services=services)
    await _feed(job, ctx)


async def _dispatch_in_one_transaction(job: JobContext, inbox_id: int, customer: str | None) -> None:
    """Lock the customer, then one transaction: claim the row (its plaintext comes back), run the
    handler, and record `ignored` when none wants it. The lock comes first: on SQLite a transaction
    waiting for a lock held by a task that needs the one connection would never end."""
    services = job.services
    try:
        async with customer_lock_for(services.kv, customer), services.db.session() as session, session.begin():
            plaintext = await session.scalar(*claim_inbox_row(inbox_id, returning=_INBOX.c.plaintext))
            if plaintext is None:
                return  # handled (or ignored) by an earlier run
            ctx = EventContext(event=InboundEvent.from_xml(plaintext), inbox_id=inbox_id, services=services,
                               session=session, customer_locked=True)
            if not await services.dispatcher.feed(ctx):
                log.info("no handler for %s; recorded as ignored", ctx.event.kind)
                await session.execute(_INBOX.update().where(_INBOX.c.id == inbox_id).values(status="ignored"))
    except Exception as exc:  # rolled back: the row is pending again; record why
        await _failed(job, inbox_id, exc)
        raise


async def _feed(job: JobContext, ctx: EventContext) -> None:
    try:
        found = await job.services.dispatcher.feed(ctx)
    except AlreadyHandled:
        return
    except Exception as exc:
        await _failed(job, ctx.inbox_id, exc)
        raise
    if not found:
        log.info("no handler for %s; recorded as ignored", ctx.event.kind)
        await _record(job.services.db, ctx.inbox_id, "ignored", None)


async def _failed(job: JobContext, inbox_id: int, exc: Exception) -> None:
    final = job.attempt >= job.services.settings.job_max_attempts
    await _record(job.services.db, inbox_id, "failed" if final else "pending", f"{type(exc).__name__}: {exc}")


async def _record(db: Database, inbox_id: int, status: str, error: str | None) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == inbox_id, InboxEvent.status.in_(("pending", "failed")))
            .values(status=status, last_error=error and error[:4000], attempts=InboxEvent.attempts + 1,
                    handled_at=utcnow())
        )
