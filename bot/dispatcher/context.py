from __future__ import annotations

import logging
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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

    async def enqueue(self, kind: str, payload: dict, **options) -> bool:
        """A follow-up job, committed together with the handler's rows."""
        assert self.session is not None, "enqueue needs the DB session middleware"
        return await enqueue(self.session, kind, payload, **options)
