"""The durable inbox: a callback is written here (with its dispatch job) before WeCom gets a 200."""

from __future__ import annotations

import logging

from sqlalchemy import update

from bot.dispatcher import Dispatcher, EventContext
from bot.dispatcher.middleware import AlreadyHandled
from bot.jobs import JobContext, enqueue, tasks
from bot.storage import Database, utcnow
from bot.storage.models import InboxEvent
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.inbox")

DISPATCH_JOB = "inbox.dispatch"


async def store_event(db: Database, event: InboundEvent, priority: int = 10) -> int | None:
    """Keep the event and queue its dispatch in one transaction; None if it is a duplicate."""
    async with db.session() as session, session.begin():
        inserted = await session.execute(
            db.insert(InboxEvent)
            .values(
                dedup_key=event.dedup_key,
                kind=event.kind[:120],
                msg_type=event.msg_type[:40],
                event=(event.event or None) and event.event[:60],
                change_type=(event.change_type or None) and event.change_type[:60],
                user_id=(event.user_id or None) and event.user_id[:64],
                external_user_id=(event.external_user_id or None) and event.external_user_id[:64],
                create_time=event.create_time,
                plaintext=event.plaintext,
                status="pending",
                attempts=0,
                received_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(InboxEvent.id)
        )
        inbox_id = inserted.scalar_one_or_none()
        if inbox_id is None:
            return None
        await enqueue(
            session, DISPATCH_JOB, {"inbox_id": inbox_id}, dedupe_key=f"inbox:{inbox_id}", priority=priority
        )
        return inbox_id


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
