"""Launching a campaign: a job that waits for `send_at`, plans the outreach once and queues the
per-guide sends, all in one transaction (a crash before the commit leaves nothing half-planned)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from bot.jobs import JobContext, Retry, tasks
from bot.members.config import MembersConfig
from bot.storage import utcnow
from sop.audience import Audience
from sop.campaigns.models import Campaign
from sop.outreach.config import OutreachConfig
from sop.outreach.fanout import send_batches
from sop.outreach.models import OutreachPlan, OutreachSend
from sop.outreach.plan import enqueue_many, plan_recipients

LAUNCH_JOB = "campaigns.launch"
PLANNING_LOCK = "outreach:planning"  # plans one at a time, so two cannot both pass a customer's cap


@tasks(LAUNCH_JOB)
async def launch_job(job: JobContext, payload: dict) -> None:
    services = job.services
    async with services.db.session() as session:
        campaign = await session.get(Campaign, payload["campaign_id"])
    if campaign is None or campaign.status not in ("scheduled", "sending"):
        return  # cancelled before it was due
    now = utcnow()
    if campaign.send_at is not None and campaign.send_at > now:
        raise Retry((campaign.send_at - now).total_seconds(), "not due yet")  # never early
    async with services.kv.lock(PLANNING_LOCK, timeout=900, wait=900):
        await plan_campaign(services, campaign.id)
    await analyze_outreach(services.db)
    services.wake_runner()


async def plan_campaign(services, campaign_id: int) -> int:
    """Plan (once) and queue every send not yet done; returns the number of sends queued."""
    config, members = services.config(OutreachConfig), services.config(MembersConfig)
    async with services.db.session() as session, session.begin():
        campaign = await session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
        if campaign.status not in ("scheduled", "sending"):
            return 0
        plan = await session.scalar(select(OutreachPlan).where(OutreachPlan.source == campaign.source))
        if plan is None:
            now = utcnow()
            plan = OutreachPlan(source=campaign.source, title=campaign.name, content=campaign.content,
                                coupon_template_code=campaign.coupon_template_code,
                                holdout_percent=campaign.holdout_percent, status="sending", planned_at=now)
            session.add(plan)
            await session.flush()
            await plan_recipients(session, plan, Audience.model_validate(campaign.audience), config=config,
                                  members=members, now=now)
            campaign.status, campaign.launched_at = "sending", now
        sends = (await session.execute(select(OutreachSend.id, OutreachSend.guide_userid, OutreachSend.chunk).where(
            OutreachSend.source == campaign.source, OutreachSend.status.in_(("planned", "creating"))))).all()
        await enqueue_many(session, send_batches(campaign.source, [tuple(send) for send in sends], config.sends_per_job))
        if not sends and plan.status == "sending":
            plan.status, plan.sent_at = "sent", utcnow()
    return len(sends)


async def analyze_outreach(db) -> None:
    """Fresh statistics after a bulk plan: without them PostgreSQL reads a chunk's customers
    through the (source, status) index, every planned row of the campaign for each chunk."""
    if not db.is_sqlite:
        async with db.session() as session, session.begin():
            await session.execute(text("ANALYZE outreach_recipients, outreach_sends"))


def due_at(campaign: Campaign) -> float | None:
    return campaign.send_at.timestamp() if campaign.send_at and campaign.send_at > dt.datetime.now(dt.UTC) else None
