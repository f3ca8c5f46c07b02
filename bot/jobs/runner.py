"""The job runner: claims due jobs under a lease, runs them, retries with back-off, dead-letters.

Claiming is one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING, so several
workers on PostgreSQL never take the same job; SQLite has a single writer, which gives the same.
A worker that dies leaves its jobs `running` with a lease in the past; every worker's lease sweep
puts them back in the queue. Completions are group-committed: one transaction per burst.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid

from sqlalchemy import and_, or_, select, update

from bot.jobs.registry import JobContext, Retry, tasks
from bot.jobs.wakeup import PostgresListener, register_local_runner
from bot.logs import bind_log_context
from bot.metrics import JOB_LATENCY, JOBS
from bot.storage import utcnow
from bot.storage.batching import GroupCommit
from bot.storage.models import Job

log = logging.getLogger("bot.jobs")


BURST_HORIZON_SECONDS = 60.0


def backoff_seconds(attempt: int, base: float, cap: float = 600.0) -> float:
    """Exponential back-off with full jitter in [0.5, 1.5) of the step."""
    step = min(cap, base * 2 ** max(0, attempt - 1))
    return step * (0.5 + random.random())


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
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wakeup = asyncio.Event()
        self._inflight: dict[int, asyncio.Task] = {}
        self._completions = GroupCommit(self._mark_done)
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
                if free > 0:
                    claimed = await self._claim(free)
                    for job in claimed:
                        self._inflight[job.id] = asyncio.create_task(self._execute(job))
                if burst and not claimed and not self._inflight and not await self._queue_has_work():
                    break
                if not claimed:
                    await self._wait_for_work()
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
        """A burst waits for running jobs and for retries due within a minute, not for tomorrow's."""
        async with self.db.session() as session:
            pending = await session.scalar(
                select(Job.id).where(
                    or_(Job.status == "running",
                        and_(Job.status == "queued", Job.run_at <= time.time() + BURST_HORIZON_SECONDS))
                ).limit(1)
            )
        return pending is not None

    async def _wait_for_work(self) -> None:
        waiters = [asyncio.create_task(self._wakeup.wait())]
        waiters += list(self._inflight.values())
        await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        waiters[0].cancel()
        self._wakeup.clear()

    async def _claim(self, limit: int) -> list[Job]:
        now = time.time()
        due = (
            select(Job.id)
            .where(Job.status == "queued", Job.run_at <= now)  # served by the partial index ix_jobs_queued
            .order_by(Job.priority.desc(), Job.run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()))
            .values(
                status="running",
                attempts=Job.attempts + 1,
                lease_until=now + self.lease_seconds,
                locked_by=self.worker_id,
            )
            .returning(Job)
            .execution_options(synchronize_session=False)
        )
        try:
            async with self.db.session() as session, session.begin():
                return list((await session.execute(claim)).scalars())
        except Exception:
            log.exception("claiming jobs failed; will try again")
            await asyncio.sleep(self.poll_seconds)
            return []

    async def _requeue_expired_leases(self) -> None:
        """Jobs of a worker that died go back to the queue (their attempt stays counted)."""
        try:
            async with self.db.session() as session, session.begin():
                await session.execute(
                    update(Job)
                    .where(Job.status == "running", Job.lease_until < time.time())
                    .values(status="queued", locked_by=None, lease_until=None)
                )
        except Exception:
            log.exception("requeueing expired leases failed")

    async def _renew_leases(self) -> None:
        """Every third of a lease: extend ours, and requeue the jobs of workers that died."""
        while True:
            await self._requeue_expired_leases()
            await asyncio.sleep(self.lease_seconds / 3)
            if not self._inflight:
                continue
            try:
                async with self.db.session() as session, session.begin():
                    await session.execute(
                        update(Job)
                        .where(Job.id.in_(list(self._inflight)), Job.locked_by == self.worker_id)
                        .values(lease_until=time.time() + self.lease_seconds)
                    )
            except Exception:
                log.exception("renewing leases failed")

    async def _execute(self, job: Job) -> None:
        function = tasks.get(job.kind)
        context = JobContext(services=self.services, job_id=job.id, kind=job.kind, attempt=job.attempts)
        with bind_log_context(job_id=job.id, job_kind=job.kind):
            if job.attempts > job.max_attempts:
                # Claimed again after its worker died on the last attempt.
                await self._finish(job, "dead", error=job.last_error or "worker died on the last attempt")
                return
            if function is None:
                await self._finish(job, "dead", error=f"unknown job kind {job.kind!r}")
                return
            try:
                await function(context, job.payload)
            except Retry as exc:
                await self._requeue(job, exc.defer, str(exc), counts=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retry_after = getattr(exc, "retry_after", None)  # the WeCom client's RateLimited
                error = f"{type(exc).__name__}: {exc}"
                if retry_after is not None:
                    await self._requeue(job, float(retry_after), error, counts=False)
                elif job.attempts >= job.max_attempts:
                    log.error("job dead after %s attempts: %s", job.attempts, error)
                    await self._finish(job, "dead", error=error)
                else:
                    log.warning("job failed (attempt %s/%s): %s", job.attempts, job.max_attempts, error)
                    await self._requeue(job, backoff_seconds(job.attempts, self.backoff_base), error)
            else:
                await self._finish(job, "done")

    async def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        if status == "done":
            await self._completions.submit(job.id)
        else:
            values = {"status": status, "finished_at": utcnow(), "lease_until": None}
            if error is not None:
                values["last_error"] = error[:4000]
            await self._update_own(job, values)
        JOBS.labels(job.kind, status).inc()
        if status == "done":
            JOB_LATENCY.labels(job.kind).observe(max(0.0, time.time() - job.run_at))

    async def _mark_done(self, job_ids: list[int]) -> list[None]:
        """Completions of a burst of jobs in one transaction (GroupCommit)."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.locked_by == self.worker_id)
                .values(status="done", finished_at=utcnow(), lease_until=None)
            )
        return [None] * len(job_ids)

    async def _requeue(self, job: Job, delay: float, error: str, counts: bool = True) -> None:
        values = {
            "status": "queued",
            "run_at": time.time() + delay,
            "lease_until": None,
            "last_error": error[:4000],
        }
        if not counts:
            values["attempts"] = Job.attempts - 1
        await self._update_own(job, values)
        JOBS.labels(job.kind, "retried").inc()

    async def _update_own(self, job: Job, values: dict) -> None:
        # Fenced by locked_by: if our lease ran out and another worker took the job, leave it be.
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(Job).where(Job.id == job.id, Job.locked_by == self.worker_id).values(**values)
            )
