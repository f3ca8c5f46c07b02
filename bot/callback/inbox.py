"""The durable inbox: a callback is written here (with its dispatch job) before WeCom gets a 200."""

from __future__ import annotations

import logging
import time

from sqlalchemy import update

from bot.dispatcher import EventContext
from bot.dispatcher.middleware import AlreadyHandled
from bot.jobs import JobContext, tasks
from bot.jobs.wakeup import notify_workers, wake_local_runners
from bot.storage import Database, utcnow
from bot.storage.batching import GroupCommit
from bot.storage.models import InboxEvent, Job
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.inbox")

DISPATCH_JOB = "inbox.dispatch"


class InboxWriter:
    """Keeps callbacks in the inbox by group commit (see GroupCommit): one transaction per burst."""

    def __init__(self, db: Database, max_batch: int = 200, priority: int = 10) -> None:
        self.db = db
        self.priority = priority
        self._batches = GroupCommit(self._write_batch, max_batch)

    async def store(self, event: InboundEvent) -> int | None:
        """Keep the event and queue its dispatch; the inbox id, or None for a duplicate."""
        return await self._batches.submit(event)

    async def _write_batch(self, events: list[InboundEvent]) -> list[int | None]:
        ids = await self._write(events)
        if ids:
            wake_local_runners()
        seen: set[str] = set()
        results = []
        for event in events:  # WeCom's concurrent retries can land in one batch: the first wins
            results.append(ids.get(event.dedup_key) if event.dedup_key not in seen else None)
            seen.add(event.dedup_key)
        return results

    async def _write(self, events: list[InboundEvent]) -> dict[str, int]:
        unique = list({event.dedup_key: event for event in reversed(events)}.values())
        # Core on a bare connection: this is the hot path, the ORM session adds nothing here.
        async with self.db.engine.begin() as conn:
            inserted = await conn.execute(
                self.db.insert(InboxEvent)
                .on_conflict_do_nothing(index_elements=["dedup_key"])
                .returning(InboxEvent.id, InboxEvent.dedup_key),
                [_inbox_row(event) for event in unique],
            )
            ids = {key: inbox_id for inbox_id, key in inserted.all()}
            if ids:
                priorities = {event.dedup_key: dispatch_priority(event, self.priority) for event in unique}
                await conn.execute(
                    Job.__table__.insert(),
                    [
                        {"kind": DISPATCH_JOB, "payload": {"inbox_id": inbox_id}, "dedupe_key": f"inbox:{inbox_id}",
                         "priority": priorities[key], "status": "queued", "attempts": 0, "max_attempts": 6,
                         "run_at": time.time(), "created_at": utcnow()}
                        for key, inbox_id in ids.items()
                    ],
                )
                await notify_workers(conn)
        return ids


# A customer who just added a guide carries a welcome code that dies in 20 s: their event goes
# ahead of the rest of the inbox.
URGENT_CHANGES = frozenset({"add_external_contact", "add_half_external_contact"})


def dispatch_priority(event: InboundEvent, default: int) -> int:
    return 50 if event.change_type in URGENT_CHANGES else default


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


@tasks(DISPATCH_JOB)
async def dispatch_inbox_event(job: JobContext, payload: dict) -> None:
    services = job.services
    inbox_id = payload["inbox_id"]
    async with services.db.session() as session:
        row = await session.get(InboxEvent, inbox_id)
    if row is None or row.status in ("handled", "ignored"):
        return
    event = InboundEvent.from_xml(row.plaintext)
    ctx = EventContext(event=event, inbox_id=inbox_id, services=services)
    try:
        found = await services.dispatcher.feed(ctx)
    except AlreadyHandled:
        return
    except Exception as exc:
        final = job.attempt >= services.settings.job_max_attempts
        await _record(services.db, inbox_id, "failed" if final else "pending", f"{type(exc).__name__}: {exc}")
        raise
    if not found:
        log.info("no handler for %s; recorded as ignored", event.kind)
        await _record(services.db, inbox_id, "ignored", None)


async def _record(db: Database, inbox_id: int, status: str, error: str | None) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == inbox_id, InboxEvent.status.in_(("pending", "failed")))
            .values(status=status, last_error=error and error[:4000], attempts=InboxEvent.attempts + 1,
                    handled_at=utcnow())
        )
