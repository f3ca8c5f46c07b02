"""The job runner: claims due jobs under a lease, runs them, retries with back-off, dead-letters.

Claiming is one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING, so several
workers on PostgreSQL never take the same job; SQLite has a single writer, which gives the same.
A worker that dies leaves its jobs `running` with a lease in the past; every worker's lease sweep
puts them back in the queue. Outcomes (done, retry, dead, expired) are group-committed: one
transaction per burst, and written again until the database takes them, so an outage neither
loses a completion nor leaves a job `running` until its lease lapses.

Each run is bounded by its kind's timeout. A transient fault (database or KV unreachable) puts the
job back with back-off without spending an attempt, until its kind's deadline passes: then it ends
`expired`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Row, and_, bindparam, case, literal_column, or_, select, tuple_, update

from bot.jobs import cron
from bot.jobs.faults import is_transient_fault
from bot.jobs.registry import JobContext, JobOptions, Retry, tasks
from bot.jobs.wakeup import PostgresListener, register_local_runner
from bot.logs import bind_log_context
from bot.metrics import JOB_LATENCY, JOBS
from bot.storage import utcnow
from bot.storage.batching import GroupCommit
from bot.storage.models import Job
from bot.storage.sqlite_driver import statements_on_loop_thread

log = logging.getLogger("bot.jobs")


BURST_HORIZON_SECONDS = 60.0
FAULT_BACKOFF_BASE = 0.5  # a store that is down for seconds is tried again within seconds
FAULT_BACKOFF_CAP = 30.0
# A job with a deadline (a welcome code lives 20 s) must not wait out a dead worker's long lease:
# its lease is this short and renewed every third of it, so a restarted worker takes it in seconds.
DEADLINE_LEASE_SECONDS = 6.0
OUTCOME_RETRY_CAP = 2.0
# When busy, claims are at most this often: each is a write transaction, and a burst's jobs then
# share one. Idle, a job is claimed at once.
CLAIM_INTERVAL = 0.02

# Literals, not bound parameters: a prepared statement's generic plan can only use the partial
# index ix_jobs_queued when the predicate is spelled as in the index.
QUEUED = literal_column("'queued'")
RUNNING = literal_column("'running'")


def backoff_seconds(attempt: int, base: float, cap: float = 600.0) -> float:
    """Exponential back-off with full jitter in [0.5, 1.5) of the step."""
    step = min(cap, base * 2 ** max(0, attempt - 1))
    return step * (0.5 + random.random())


def claim_statement(limit: int, now: float, lease_until: float, worker_id: str,
                    short_lease_kinds: tuple[str, ...] = (), short_lease_until: float | None = None,
                    key_released_kinds: tuple[str, ...] = ()):
    """Take the `limit` most urgent due jobs: an ordered walk of ix_jobs_queued, never a sort.

    Jobs of `short_lease_kinds` are leased until `short_lease_until` instead; jobs of
    `key_released_kinds` give up their dedupe key (the next one of the key can be queued)."""
    due = (
        select(Job.id)
        .where(Job.status == QUEUED, Job.run_at <= now)
        .order_by(Job.priority.desc(), Job.run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    released = {"dedupe_key": case((Job.kind.in_(key_released_kinds), None), else_=Job.dedupe_key)
                } if key_released_kinds else {}
    return (
        update(Job)
        .where(Job.id.in_(due.scalar_subquery()))
        .values(status="running", attempts=Job.attempts + 1, locked_by=worker_id,
                lease_until=_lease_until(short_lease_kinds, short_lease_until, lease_until), **released)
        # Plain rows (attribute access like a Job), not ORM objects: the runner only reads them.
        .returning(*Job.__table__.columns)
    )


def _lease_until(short_lease_kinds: tuple[str, ...], short_until: float | None, until: float):
    if not short_lease_kinds or short_until is None:
        return until
    return case((Job.kind.in_(short_lease_kinds), short_until), else_=until)


def _short_lease_kinds() -> tuple[str, ...]:
    return tuple(kind for kind in tasks.kinds() if tasks.options(kind).deadline is not None)


def _key_released_kinds() -> tuple[str, ...]:
    return tuple(kind for kind in tasks.kinds() if tasks.options(kind).key_released_at_start)


@dataclass
class Outcome:
    """How a run ended, as the row update that records it."""

    job: Row  # the claimed jobs row
    status: str  # done | queued | dead | expired
    error: str | None = None
    run_at: float | None = None
    refund: bool = False  # the attempt does not count (Retry, rate limit, transient fault)
    fault: bool = False  # a transient fault: the back-off counter grows
    also_done: tuple[int, ...] = ()  # queued jobs it did the work of (JobContext.also_done)


class JobRunner:
    def __init__(
        self,
        services,
        *,
        concurrency: int = 16,
        lease_seconds: float = 60.0,
        poll_seconds: float = 0.5,
        backoff_base: float = 2.0,
        worker_id: str | None = None,
    ) -> None:
        self.services = services
        self.db = services.db
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.short_lease_seconds = min(DEADLINE_LEASE_SECONDS, lease_seconds)
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.timezone = ZoneInfo(getattr(getattr(services, "settings", None), "timezone", cron.DEFAULT_TIMEZONE))
        self._wakeup = asyncio.Event()
        self._last_claim_at = float("-inf")
        self._may_have_work = True  # claim only when work may be due: announced, polled, or left over
        self._inflight: dict[int, asyncio.Task] = {}
        self._outcomes = GroupCommit(self._write_outcomes)
        self._stopping = False

    def notify(self) -> None:
        """New work was enqueued in this process: look now instead of at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self, burst: bool = False) -> int:
        """Run until stopped (or, with burst, until nothing runs and nothing is due within a minute)."""
        finished = 0
        heartbeat = asyncio.create_task(self._renew_leases())
        unregister = register_local_runner(self.notify)
        listener = None
        if not self.db.is_sqlite:
            listener = PostgresListener(self.db.url, self.notify)
            await listener.start()
        try:
            while not self._stopping:
                claimed = []
                free = self.concurrency - len(self._inflight)
                if free > 0 and self._may_have_work:
                    if (wait := self._last_claim_at + CLAIM_INTERVAL - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                        free = self.concurrency - len(self._inflight)
                    self._last_claim_at = time.monotonic()
                    claimed = await self._claim(free)
                    # A full claim may have left more behind; a short one emptied what was due.
                    self._may_have_work = len(claimed) == free
                    for job in claimed:
                        self._inflight[job.id] = asyncio.create_task(self._execute(job))
                if burst and not claimed and not self._inflight:
                    if not await self._queue_has_work():
                        break
                    self._may_have_work = True
                if not claimed:
                    await self._wait_for_work(full=free <= 0)
                done = [job_id for job_id, task in self._inflight.items() if task.done()]
                for job_id in done:
                    self._inflight.pop(job_id)
                    finished += 1
        except asyncio.CancelledError:
            # Killed: abandon running jobs; their leases lapse and another worker takes them.
            for task in self._inflight.values():
                task.cancel()
            raise
        finally:
            # Wait for the heartbeat to end while the database is still open: a task cancelled
            # later, mid-query, would be left waiting on a closed connection.
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            unregister()
            if listener is not None:
                await listener.stop()
        # Stopped gracefully: let running jobs finish.
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
            finished += len(self._inflight)
            self._inflight.clear()
        return finished

    async def _queue_has_work(self) -> bool:
        """A burst waits for running jobs and for retries due within a minute, not for tomorrow's,
        nor for the next occurrence of a recurring job (an every-minute cron would never let it end)."""
        now = time.time()
        try:
            async with self.db.engine.connect() as conn:
                pending = await conn.scalar(
                    select(Job.id).where(
                        or_(Job.status == RUNNING,
                            and_(Job.status == QUEUED, Job.run_at <= now + BURST_HORIZON_SECONDS,
                                 or_(Job.run_at <= now, Job.dedupe_key.is_(None),
                                     Job.dedupe_key.not_like(f"{cron.KEY_PREFIX}%"))))
                    ).limit(1)
                )
        except Exception as exc:
            if not is_transient_fault(exc):
                raise
            return True  # cannot tell during an outage: keep going
        return pending is not None

    async def _wait_for_work(self, full: bool) -> None:
        """Until new work is announced or the poll interval passes; when every slot is taken, also
        until a running job ends. A job ending with slots free is no reason to look again: that
        look (a claim, a write transaction) would find nothing that was not announced."""
        waiters = [asyncio.create_task(self._wakeup.wait())]
        if full:
            waiters += list(self._inflight.values())
        done, _ = await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        waiters[0].cancel()
        if self._wakeup.is_set() or not done:  # announced, or the poll: jobs may be due (retries, other processes)
            self._may_have_work = True
        self._wakeup.clear()

    async def _claim(self, limit: int) -> list[Row]:
        now = time.time()
        claim = claim_statement(limit, now, now + self.lease_seconds, self.worker_id,
                                _short_lease_kinds(), now + self.short_lease_seconds, _key_released_kinds())
        try:
            with statements_on_loop_thread():
                async with self.db.engine.begin() as conn:
                    return list((await conn.execute(claim)).all())
        except Exception as exc:
            if is_transient_fault(exc):
                log.warning("cannot claim jobs (%s); will try again", exc)
            else:
                log.exception("claiming jobs failed; will try again")
            await asyncio.sleep(self.poll_seconds)
            return []

    async def _requeue_expired_leases(self) -> None:
        """Jobs of a worker that died go back to the queue (their attempt stays counted)."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.status == RUNNING, Job.lease_until < time.time())
                .values(status="queued", locked_by=None, lease_until=None)
            )

    async def _extend_own_leases(self) -> None:
        if not self._inflight:
            return
        now = time.time()
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id.in_(list(self._inflight)), Job.locked_by == self.worker_id)
                .values(lease_until=_lease_until(_short_lease_kinds(), now + self.short_lease_seconds,
                                                 now + self.lease_seconds))
            )

    async def _renew_leases(self) -> None:
        """Every third of the short lease: extend ours, then requeue the jobs of workers that died.

        After an outage this runs again within a second, so the leases of living workers are
        extended before anyone's sweep could mistake them for a dead worker's."""
        extend_first = False
        while True:
            try:
                if extend_first:
                    await self._extend_own_leases()
                await self._requeue_expired_leases()
                extend_first = True
                pause = self.short_lease_seconds / 3
            except Exception as exc:
                log.warning("renewing leases failed (%s); trying again", exc)
                pause = min(1.0, self.short_lease_seconds / 3)
            await asyncio.sleep(pause)

    async def _execute(self, job: Row) -> None:
        function = tasks.get(job.kind)
        options = tasks.options(job.kind)
        with bind_log_context(job_id=job.id, job_kind=job.kind):
            if job.attempts > job.max_attempts:
                # Claimed again after its worker died on the last attempt.
                outcome = Outcome(job, "dead", error=job.last_error or "worker died on the last attempt")
            elif function is None:
                outcome = Outcome(job, "dead", error=f"unknown job kind {job.kind!r}")
            elif options.quick:
                with statements_on_loop_thread():
                    outcome = await self._run(job, function, options)
            else:
                outcome = await self._run(job, function, options)
            await self._record(outcome)
            if outcome.status == "expired" and options.on_expired is not None:
                options.on_expired(job.payload)

    async def _run(self, job: Row, function, options: JobOptions) -> Outcome:
        deadline = options.deadline(job.payload) if options.deadline else None
        if deadline is not None and time.time() >= deadline:
            return Outcome(job, "expired", error=f"deadline passed {time.time() - deadline:.1f}s before it could run")
        context = JobContext(services=self.services, job_id=job.id, kind=job.kind, attempt=job.attempts)
        try:
            async with asyncio.timeout(options.timeout) as scope:
                await function(context, job.payload)
        except Retry as exc:
            return Outcome(job, "queued", error=str(exc), run_at=time.time() + exc.defer, refund=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, TimeoutError) and scope.expired():
                error = f"timed out after {options.timeout:g}s"
            elif is_transient_fault(exc):
                return self._after_transient_fault(job, error, deadline)
            retry_after = getattr(exc, "retry_after", None)  # the WeCom client's RateLimited
            if retry_after is not None:
                run_at = time.time() + float(retry_after)
                if deadline is not None and run_at >= deadline:  # over the budget until it is too late
                    return Outcome(job, "expired", error=f"deadline passes before the next try: {error}")
                return Outcome(job, "queued", error=error, run_at=run_at, refund=True)
            if job.attempts >= job.max_attempts:
                log.error("job dead after %s attempts: %s", job.attempts, error)
                return Outcome(job, "dead", error=error)
            log.warning("job failed (attempt %s/%s): %s", job.attempts, job.max_attempts, error)
            return Outcome(job, "queued", error=error,
                           run_at=time.time() + backoff_seconds(job.attempts, self.backoff_base))
        return Outcome(job, "done", also_done=tuple(context.also_done))

    def _after_transient_fault(self, job: Row, error: str, deadline: float | None) -> Outcome:
        run_at = time.time() + backoff_seconds(job.faults + 1, FAULT_BACKOFF_BASE, FAULT_BACKOFF_CAP)
        if deadline is not None:
            if time.time() >= deadline:
                return Outcome(job, "expired", error=f"deadline passed during an outage: {error}")
            # Try again at least every third of the time left (so the first try after the outage
            # comes soon enough, not one long back-off later), and once more before it is too late.
            run_at = min(run_at, time.time() + max(FAULT_BACKOFF_BASE, (deadline - time.time()) / 3),
                         deadline - 0.05)
        log.warning("transient fault, trying again in %.1fs (attempt not counted): %s", run_at - time.time(), error)
        return Outcome(job, "queued", error=error, run_at=run_at, refund=True, fault=True)

    async def _record(self, outcome: Outcome) -> None:
        """Write the outcome, again and again while the database is unreachable."""
        pause = 0.1
        while True:
            try:
                await self._outcomes.submit(outcome)
                break
            except Exception as exc:
                if not is_transient_fault(exc):
                    log.exception("recording the outcome of job %s failed; its lease will lapse", outcome.job.id)
                    return
                log.warning("cannot record the outcome of job %s yet (%s)", outcome.job.id, exc)
                await asyncio.sleep(pause)
                pause = min(OUTCOME_RETRY_CAP, pause * 2)
        job = outcome.job
        JOBS.labels(job.kind, "retried" if outcome.status == "queued" else outcome.status).inc()
        if outcome.status == "done":
            JOB_LATENCY.labels(job.kind).observe(max(0.0, time.time() - job.run_at))

    def _fenced(self, job_id, attempts):
        # Ours still; or put back by a lease sweep during an outage and not taken by anyone since.
        return and_(Job.id == job_id, or_(
            Job.locked_by == self.worker_id,
            and_(Job.status == QUEUED, Job.locked_by.is_(None), Job.attempts == attempts),
        ))

    async def _write_outcomes(self, outcomes: list[Outcome]) -> list[None]:
        """A burst of outcomes in one transaction: completions in one UPDATE, the rest in one
        executemany; the next occurrence of every finished cron job is queued with them."""
        with statements_on_loop_thread():
            await self._write_outcome_rows(outcomes)
        return [None] * len(outcomes)

    async def _write_outcome_rows(self, outcomes: list[Outcome]) -> None:
        now = utcnow()
        done = [o for o in outcomes if o.status == "done"]
        others = [o for o in outcomes if o.status != "done"]
        # Core on a bare connection: no ORM session to synchronise, no objects to build.
        async with self.db.engine.begin() as conn:
            if done:
                ours = [(o.job.id, o.job.attempts) for o in done]
                finished_jobs = or_(Job.locked_by == self.worker_id,
                                    and_(Job.status == QUEUED, Job.locked_by.is_(None), tuple_(Job.id, Job.attempts).in_(ours)))
                done_for = [job_id for o in done for job_id in o.also_done]
                if done_for:  # done by another job: only while still queued and never tried
                    finished_jobs = or_(and_(Job.id.in_([job_id for job_id, _ in ours]), finished_jobs),
                                        and_(Job.id.in_(done_for), Job.status == QUEUED, Job.attempts == 0))
                else:
                    finished_jobs = and_(Job.id.in_([job_id for job_id, _ in ours]), finished_jobs)
                await conn.execute(update(Job).where(finished_jobs)
                                   .values(status="done", finished_at=now, lease_until=None))
            if others:
                await conn.execute(
                    update(Job)
                    .where(self._fenced(bindparam("job_id"), bindparam("held_attempts")))
                    .values(
                        status=bindparam("new_status"),
                        run_at=bindparam("new_run_at"),
                        attempts=Job.attempts - bindparam("refund"),
                        faults=bindparam("new_faults"),
                        last_error=bindparam("error"),
                        finished_at=bindparam("finished"),
                        lease_until=None,
                        locked_by=None,
                    ),
                    [self._row_values(o, now) for o in others],
                )
            finished = [o.job for o in outcomes if o.status != "queued"]
            await cron.queue_next_occurrences(conn, finished, self.timezone)

    @staticmethod
    def _row_values(outcome: Outcome, now) -> dict:
        job = outcome.job
        final = outcome.status != "queued"
        return {
            "job_id": job.id,
            "held_attempts": job.attempts,
            "new_status": outcome.status,
            "new_run_at": outcome.run_at if outcome.run_at is not None else job.run_at,
            "refund": 1 if outcome.refund else 0,
            "new_faults": job.faults + 1 if outcome.fault else job.faults,
            "error": (outcome.error or job.last_error or "")[:4000] or None,
            "finished": now if final else None,
        }
