"""The durable inbox: a callback is written here (with its dispatch job) before WeCom gets a 200."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy import exc as sa_exc

from bot.dispatcher import EventContext
from bot.dispatcher.middleware import (
    AlreadyHandled,
    claim_inbox_group,
    claim_inbox_row,
    customer_lock_for,
    customer_of,
)
from bot.dispatcher.router import CoalesceKey, IntakeJob
from bot.jobs import JobContext, Priority, job_row, tasks
from bot.jobs.wakeup import notify_workers, wake_local_runners
from bot.storage import Database, utcnow
from bot.storage.batching import GroupCommit
from bot.storage.models import InboxEvent, Job
from bot.storage.sqlite_driver import statements_on_loop_thread
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.inbox")

DISPATCH_JOB = "inbox.dispatch"
# One job for all pending events of a router's `coalesce` key (e.g. a 微信客服 account's callbacks).
GROUP_DISPATCH_JOB = "inbox.dispatch_group"
GROUP_KEY_PREFIX = "inbox-group:"
_INBOX = InboxEvent.__table__
_JOBS = Job.__table__


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

    @property
    def dispatch_key(self) -> str | None:
        return self.row["dispatch_key"]


class InboxWriter:
    """Keeps callbacks in the inbox by group commit (see GroupCommit): one transaction per burst."""

    def __init__(self, db: Database, max_batch: int = 200, priority: Priority | None = None,
                 intake: list[IntakeJob] | None = None, coalesce: list[CoalesceKey] | None = None) -> None:
        self.db = db
        self.priority = priority  # None: the dispatch job's declared priority
        self.intake = list(intake or [])  # the routers' `at_intake` declarations
        self.coalesce = list(coalesce or [])  # the routers' `coalesce` declarations
        # A batch that one bad row fails is written again row by row: the others are still kept.
        self._batches = GroupCommit(self._write_batch, max_batch, retry_alone=is_bad_row)

    async def store(self, event: InboundEvent) -> int | None:
        """Keep the event and queue its dispatch; the inbox id, or None for a duplicate."""
        # Built here, outside the batch: an event that cannot become a row fails only its caller.
        keep = _Keep(event, _inbox_row(event, _dispatch_key(self.coalesce, event)), _urgent_jobs(self.intake, event))
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
                single = [job_row(DISPATCH_JOB, dispatch_payload(inbox_id, unique[key].event),
                                  dedupe_key=f"inbox:{inbox_id}", priority=self.priority)
                          for key, inbox_id in ids.items() if unique[key].dispatch_key is None]
                if single:
                    await conn.execute(_JOBS.insert(), single)
                await self._queue_group_dispatches(conn, {unique[key].dispatch_key for key in ids} - {None})
                urgent = [job for key in ids for job in unique[key].urgent_jobs]
                if urgent:
                    await conn.execute(
                        self.db.insert(Job).on_conflict_do_nothing(index_elements=["dedupe_key"]), urgent)
                await notify_workers(conn)
        return ids

    async def _queue_group_dispatches(self, conn, dispatch_keys: set[str]) -> None:
        """One dispatch job per key, unless one is queued and not started yet: it will take these
        rows too. ON CONFLICT DO UPDATE (no change to a queued job), not DO NOTHING: it locks the
        queued job until this transaction commits, so no worker can start it — and claim the key's
        rows — before these rows are there to be claimed. Once started, the job no longer holds the key
        (`key_released_at_start`), so rows that come while it runs get a job of their own."""
        if not dispatch_keys:
            return
        insert = self.db.insert(Job)
        await conn.execute(
            insert.on_conflict_do_update(index_elements=["dedupe_key"], set_=_requeued(insert),
                                         where=_JOBS.c.status != "running"),
            [job_row(GROUP_DISPATCH_JOB, {"dispatch_key": key}, dedupe_key=GROUP_KEY_PREFIX + key,
                     priority=self.priority)
             for key in sorted(dispatch_keys)])  # in one order: two intakes never wait for each other in a cycle


def _requeued(insert) -> dict:
    """The upsert's SET: on the queued job of the key, a no-op but for the lock (the earlier run_at
    stays). On a finished one still holding the key (a worker that did not release it: an older
    version that did not know the kind) the row becomes the new queued job, so the key cannot
    swallow the account's callbacks for good."""
    new = insert.excluded
    return {"status": "queued", "run_at": case((new.run_at < _JOBS.c.run_at, new.run_at), else_=_JOBS.c.run_at),
            "attempts": 0, "faults": 0, "lease_until": None, "locked_by": None, "finished_at": None,
            "last_error": None}


def _dispatch_key(coalesce: list[CoalesceKey], event: InboundEvent) -> str | None:
    for key_of in coalesce:
        key = key_of(event)
        if key:
            return key[:120]
    return None


def _inbox_row(event: InboundEvent, dispatch_key: str | None = None) -> dict:
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
        "dispatch_key": dispatch_key,
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
    services, committed_work = job.services, []
    try:
        async with customer_lock_for(services.kv, customer), services.db.session() as session, session.begin():
            claimed = (await session.execute(
                *claim_inbox_row(inbox_id, returning=(_INBOX.c.plaintext, _INBOX.c.received_at)))).first()
            if claimed is None:
                return  # handled (or ignored) by an earlier run
            ctx = EventContext(event=InboundEvent.from_xml(claimed.plaintext), inbox_id=inbox_id, services=services,
                               session=session, customer_locked=True, received_at=claimed.received_at,
                               committed_work=committed_work)
            if not await services.dispatcher.feed(ctx):
                log.info("no handler for %s; recorded as ignored", ctx.event.kind)
                await session.execute(_INBOX.update().where(_INBOX.c.id == inbox_id).values(status="ignored"))
    except Exception as exc:  # rolled back: the row is pending again; record why
        await _failed(job, inbox_id, exc)
        raise
    await _after_commit(job, committed_work)


@tasks(GROUP_DISPATCH_JOB, priority=Priority.HIGH, quick=True, key_released_at_start=True)
async def dispatch_inbox_group(job: JobContext, payload: dict) -> None:
    """Every pending event of the key in one transaction: claim them all (one UPDATE … RETURNING),
    run the handler once for the newest, and record `ignored` for all when none wants it. A failure
    rolls the claim back: the rows are pending again for the job's next try.

    No per-customer lock: a coalesced event's handler serialises its own work (the 微信客服 sync
    holds its cursor's row lock), and the lock would have to come before the transaction."""
    services, dispatch_key, committed_work = job.services, payload["dispatch_key"], []
    try:
        async with services.db.session() as session, session.begin():
            claimed = (await session.execute(*claim_inbox_group(dispatch_key))).all()
            if not claimed:
                return  # an earlier job took them
            newest = max(claimed, key=lambda row: row.id)
            ctx = EventContext(event=InboundEvent.from_xml(newest.plaintext), inbox_id=newest.id, services=services,
                               session=session, customer_locked=True,
                               received_at=max(row.received_at for row in claimed), committed_work=committed_work)
            if not await services.dispatcher.feed(ctx):
                log.info("no handler for %s; recorded as ignored", ctx.event.kind)
                await session.execute(_INBOX.update().where(_INBOX.c.id.in_([row.id for row in claimed]))
                                      .values(status="ignored"))
    except Exception as exc:
        await _group_failed(job, dispatch_key, exc)
        raise
    await _after_commit(job, committed_work)


async def _after_commit(job: JobContext, committed_work: list) -> None:
    """The handlers' work after the commit (e.g. sending the answers); each done one's fallback job
    ends done with this job. A failure is left to its fallback job: the rows are committed."""
    for work, fallback_job_id in committed_work:
        try:
            await work()
        except Exception:
            log.warning("work after the commit failed; its fallback job %s will do it", fallback_job_id,
                        exc_info=True)
            continue
        if fallback_job_id is not None:
            job.also_done.append(fallback_job_id)


async def _group_failed(job: JobContext, dispatch_key: str, exc: Exception) -> None:
    final = job.attempt >= job.services.settings.job_max_attempts
    error = f"{type(exc).__name__}: {exc}"[:4000]
    async with job.services.db.session() as session, session.begin():
        await session.execute(
            _INBOX.update()
            .where(_INBOX.c.dispatch_key == dispatch_key, _INBOX.c.status.in_(("pending", "failed")))
            .values(status="failed" if final else "pending", last_error=error, attempts=_INBOX.c.attempts + 1,
                    handled_at=utcnow())
        )


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
