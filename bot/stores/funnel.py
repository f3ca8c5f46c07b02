"""Recording the funnel: scan → locate → choose → add (and delete), one row per step.

Locations are kept rounded to ~100 m: enough to study coverage, not enough to find a home.
Anyone can load a landing page, so each client address writes at most VISITOR_ROWS_PER_MINUTE
rows of one step for one code per minute (counted in the KV store, shared by every process).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.kv import KVUnavailable
from bot.storage import utcnow
from bot.stores.models import FunnelEvent

log = logging.getLogger("bot.stores.funnel")

STEPS = ("scan", "locate", "choose", "add", "delete")
# Generous for one shop's Wi-Fi or a carrier NAT, small enough that a script cannot fill the table.
VISITOR_ROWS_PER_MINUTE = 30
# An add is credited to the code whose page showed that guide within this window.
ATTRIBUTION_WINDOW = dt.timedelta(hours=2)


def funnel_row(step: str, *, qrcode_code=None, channel_code=None, store_code=None, guide_userid=None,
               visitor=None, at: dt.datetime | None = None, **details) -> FunnelEvent:
    assert step in STEPS, step
    return FunnelEvent(
        step=step, qrcode_code=qrcode_code, channel_code=channel_code, store_code=store_code,
        guide_userid=guide_userid, visitor=(visitor or None) and visitor[:64], at=at or utcnow(),
        details={key: value for key, value in details.items() if value is not None},
    )


async def visitor_may_write(kv, step: str, qrcode_code: str, client: str) -> bool:
    """Whether this client's next `step` row for the code fits its per-minute allowance."""
    try:
        count = await kv.incr(f"funnel_rate:{step}:{qrcode_code}:{client}", ttl=60)
    except KVUnavailable as exc:  # counting is a guard, not a reason to lose the row
        log.warning("funnel rate limit unavailable: %s", exc)
        return True
    return count <= VISITOR_ROWS_PER_MINUTE


async def record_step(db, step: str, **fields) -> None:
    """One funnel row in its own short transaction (the landing page's requests)."""
    async with db.session() as session, session.begin():
        session.add(funnel_row(step, **fields))


async def code_that_showed(
    session: AsyncSession, guide_userid: str, channel_code: str | None, now: dt.datetime
) -> str | None:
    """The aggregated code whose landing page most recently offered this guide for this channel."""
    if channel_code is None:
        return None
    return await session.scalar(
        select(FunnelEvent.qrcode_code)
        .where(
            FunnelEvent.step.in_(("locate", "choose")),
            FunnelEvent.at >= now - ATTRIBUTION_WINDOW,
            FunnelEvent.guide_userid == guide_userid,
            FunnelEvent.channel_code == channel_code,
        )
        .order_by(FunnelEvent.at.desc(), FunnelEvent.id.desc())
        .limit(1)
    )
