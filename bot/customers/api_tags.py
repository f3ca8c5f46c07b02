"""POST /api/v1/customer-tags/resync: re-read every customer's tags from WeCom (bot/customers/tag_mirror.py)."""

from __future__ import annotations

from pydantic import BaseModel

from bot.api.auth import Role
from bot.api.spec import ApiCall, api
from bot.customers.tag_mirror import RESYNC_JOB
from bot.jobs.queue import enqueue
from bot.storage import utcnow


class ResyncOut(BaseModel):
    queued: bool


@api.route("POST", "/api/v1/customer-tags/resync", summary="Re-read every customer's tags from WeCom (a job)",
           roles=[Role.HQ_ADMIN], response=ResyncOut, status=202)
async def request_resync(call: ApiCall) -> ResyncOut:
    async with call.services.db.session() as session, session.begin():
        # One resync at a time: a second request while one waits is the same job.
        queued = await enqueue(session, RESYNC_JOB, {}, dedupe_key=f"customer-tags-resync:{utcnow():%Y%m%d%H%M}")
    call.services.wake_runner()
    return ResyncOut(queued=queued)
