from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs.queue import enqueue
from bot.wecom.events import InboundEvent

if TYPE_CHECKING:
    from bot.services import Services


@dataclass
class EventContext:
    """Everything a handler gets: the event, the open DB session, and the services."""

    event: InboundEvent
    inbox_id: int
    services: Services
    session: AsyncSession | None = None
    customer_locked: bool = False  # the per-customer lock is held already (by the inbox job)
    # When the event arrived (of coalesced events: the newest's), as the inbox claim returned it.
    received_at: dt.datetime | None = None
    # Work to do once the handler's transaction committed, with the id of a job queued in it to do
    # the same later (None: none); a list only where the inbox job runs it (see `after_commit`).
    committed_work: list[tuple[Callable[[], Awaitable[Any]], int | None]] | None = None
    log: logging.LoggerAdapter | logging.Logger = field(default_factory=lambda: logging.getLogger("bot.handlers"))

    @property
    def settings(self):
        return self.services.settings

    @property
    def wecom(self):
        return self.services.wecom

    @property
    def kv(self):
        return self.services.kv

    @property
    def runs_after_commit(self) -> bool:
        return self.committed_work is not None

    def after_commit(self, work: Callable[[], Awaitable[Any]], fallback_job_id: int | None = None) -> None:
        """Run `work` in this job right after the commit (only where `runs_after_commit`). The job
        `fallback_job_id`, queued in the transaction to run a little later, does it instead if this
        process dies first or `work` fails; when `work` succeeds it ends done without running."""
        assert self.committed_work is not None, "after_commit needs an inbox job that runs it"
        self.committed_work.append((work, fallback_job_id))

    async def enqueue(self, kind: str, payload: dict, **options) -> bool:
        """A follow-up job, committed together with the handler's rows."""
        assert self.session is not None, "enqueue needs the DB session middleware"
        return await enqueue(self.session, kind, payload, **options)
