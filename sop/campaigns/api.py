"""Campaigns API: create (hq_admin, or a store manager for their stores), approve (hq_admin),
launch, cancel, remind, sync, read with counts and conversions; and the audience preview.

Every refusal is a 4xx naming the field, before anything is written or sent.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from bot.api.auth import Principal, Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.jobs import enqueue
from bot.members.config import MembersConfig
from bot.members.models import CouponTemplate
from bot.storage import utcnow
from sop.audience import Audience
from sop.campaigns.launch import LAUNCH_JOB, due_at
from sop.campaigns.models import Campaign
from sop.campaigns.schemas import (
    Breakdown,
    CampaignCreated,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    CampaignRow,
    CampaignsQuery,
    CancelOut,
    Conversions,
    Counts,
    EmptyBody,
    PreviewCount,
    PreviewIn,
    PreviewOut,
    RecipientOut,
    RecipientPage,
    RecipientsQuery,
    RemindOut,
)
from sop.outreach import results
from sop.outreach.config import OutreachConfig
from sop.outreach.fanout import cancel_outreach, remind_outreach
from sop.outreach.models import OutreachPlan, OutreachRecipient
from sop.outreach.plan import anyone_to_send, preview
from sop.outreach.sync import finish_if_final, sync_outreach

MANAGERS = [Role.HQ_ADMIN, Role.STORE_MANAGER]
REMINDERS_PER_DAY = 3  # remind_groupmsg_send: 3 per 24 h


def _refuse(status: int, code: str, field: str, problem: str) -> ApiError:
    return ApiError(status, code, f"{field}: {problem}", [{"field": field, "problem": problem}])


def _check_stores(principal: Principal, audience: Audience, field: str) -> list[str]:
    """A store manager's audience must name only their own stores; returns the campaign's stores."""
    if principal.role != Role.STORE_MANAGER:
        return []
    if not audience.stores:
        raise _refuse(403, "forbidden", f"{field}.stores", "a store manager must name their own stores")
    foreign = sorted(set(audience.stores) - set(principal.store_codes))
    if foreign:
        raise _refuse(403, "forbidden", f"{field}.stores", f"not your store(s): {', '.join(foreign)}")
    return sorted(set(audience.stores))


def _visible(principal: Principal, campaign: Campaign | None) -> bool:
    if campaign is None:
        return False
    if principal.role == Role.STORE_MANAGER:
        return bool(campaign.store_codes) and set(campaign.store_codes) <= set(principal.store_codes)
    return True


async def _campaign(session, call: ApiCall, *, lock: bool = False) -> Campaign:
    raw = call.path["campaign_id"]
    campaign = None
    if raw.isdigit():
        statement = select(Campaign).where(Campaign.id == int(raw))
        campaign = await session.scalar(statement.with_for_update() if lock else statement)
    if not _visible(call.principal, campaign):
        raise ApiError(404, "not_found", f"no campaign {raw}")
    return campaign


async def _status(session, campaign: Campaign) -> str:
    """sending → the outreach's sending | sent | finished once launched."""
    if campaign.status != "sending":
        return campaign.status
    plan_status = await session.scalar(select(OutreachPlan.status).where(OutreachPlan.source == campaign.source))
    return plan_status if plan_status in ("sending", "sent", "finished") else "sending"


@api.route("POST", "/api/v1/audiences/preview", summary="Who an audience reaches: totals, per store and guide, "
           "and the excluded with the reason", roles=MANAGERS, body=PreviewIn, response=PreviewOut)
async def preview_audience(call: ApiCall) -> PreviewOut:
    body: PreviewIn = call.body
    _check_stores(call.principal, body.audience, "audience")
    async with call.services.db.session() as session:
        rows = await preview(session, body.audience, config=call.services.config(OutreachConfig),
                             members=call.services.config(MembersConfig), now=utcnow(),
                             holdout_percent=body.holdout_percent)
    by_store: dict[str | None, int] = {}
    by_guide: dict[str | None, int] = {}
    excluded: dict[str, int] = {"not_friend": 0, "over_cap": 0, "held_out": 0, "guide_left": 0}
    for store, guide, reason, count in rows:
        if reason == "targeted":
            by_store[store] = by_store.get(store, 0) + count
            by_guide[guide] = by_guide.get(guide, 0) + count
        else:
            excluded[reason] = excluded.get(reason, 0) + count
    return PreviewOut(
        total=sum(by_store.values()),
        by_store=[PreviewCount(code=c, count=n) for c, n in sorted(by_store.items(), key=lambda i: str(i[0]))],
        by_guide=[PreviewCount(code=c, count=n) for c, n in sorted(by_guide.items(), key=lambda i: str(i[0]))],
        excluded=excluded)


@api.route("POST", "/api/v1/campaigns", summary="Create a campaign (a draft until approved)", roles=MANAGERS,
           body=CampaignIn, response=CampaignCreated, status=201)
async def create_campaign(call: ApiCall) -> CampaignCreated:
    body: CampaignIn = call.body
    stores = _check_stores(call.principal, body.audience, "audience")
    async with call.services.db.session() as session, session.begin():
        if body.benefit is not None:
            template = await session.scalar(select(CouponTemplate).where(
                CouponTemplate.code == body.benefit.coupon_template_code))
            if template is None or not template.active:
                raise _refuse(422, "invalid_request", "benefit.coupon_template_code",
                              f"no active coupon template {body.benefit.coupon_template_code!r}")
        campaign = Campaign(
            name=body.name, audience=body.audience.model_dump(exclude_none=True),
            content=body.content.model_dump(exclude_none=True), send_at=body.send_at,
            coupon_template_code=body.benefit and body.benefit.coupon_template_code,
            attribution_days=body.attribution_days, holdout_percent=body.holdout_percent, status="draft",
            store_codes=stores, created_by=f"token:{call.principal.token_id}")
        session.add(campaign)
        await session.flush()
        return CampaignCreated(id=campaign.id, status=campaign.status)


@api.route("GET", "/api/v1/campaigns", summary="Campaigns, newest first", roles=MANAGERS, query=CampaignsQuery,
           response=CampaignPage)
async def list_campaigns(call: ApiCall) -> CampaignPage:
    q: CampaignsQuery = call.query
    statement = select(Campaign).order_by(Campaign.id.desc()).limit(q.limit)
    if q.before_id:
        statement = statement.where(Campaign.id < q.before_id)
    rows = []
    async with call.services.db.session() as session:
        for campaign in (await session.scalars(statement)).all():
            status = await _status(session, campaign)
            if _visible(call.principal, campaign) and (q.status is None or q.status == status):
                rows.append(CampaignRow(id=campaign.id, name=campaign.name, status=status, send_at=campaign.send_at,
                                        created_at=campaign.created_at, launched_at=campaign.launched_at))
    return CampaignPage(campaigns=rows)


async def campaign_detail(session, campaign: Campaign) -> CampaignOut:
    source = campaign.source
    counts = await results.status_counts(session, source)
    tasks, confirmed = await results.task_counts(session, source)
    conversions = await results.conversions(session, source, campaign.launched_at, campaign.attribution_days, counts)
    targeted = sum(n for status, n in counts.items() if status != "held_out")
    return CampaignOut(
        id=campaign.id, name=campaign.name, status=await _status(session, campaign), audience=campaign.audience,
        content=campaign.content,
        benefit={"coupon_template_code": campaign.coupon_template_code} if campaign.coupon_template_code else None,
        send_at=campaign.send_at, attribution_days=campaign.attribution_days,
        holdout_percent=campaign.holdout_percent, created_at=campaign.created_at, launched_at=campaign.launched_at,
        counts=Counts(targeted=targeted, held_out=counts["held_out"], tasks=tasks, guides_confirmed=confirmed,
                      sent=counts["sent"], not_friend=counts["not_friend"], over_cap=counts["over_cap"],
                      failed=counts["failed"], pending=counts["pending"] + counts["planned"],
                      skipped=counts["skipped"], cancelled=counts["cancelled"]),
        conversions=Conversions(**conversions),
        by_store=[Breakdown(**row) for row in await results.breakdown(session, source, OutreachRecipient.store_code)],
        by_guide=[Breakdown(**row) for row in await results.breakdown(session, source, OutreachRecipient.guide_userid)],
    )


@api.route("GET", "/api/v1/campaigns/{campaign_id}", summary="A campaign with counts, conversions, by store and "
           "by guide", roles=MANAGERS, response=CampaignOut)
async def get_campaign(call: ApiCall) -> CampaignOut:
    async with call.services.db.session() as session:
        return await campaign_detail(session, await _campaign(session, call))


@api.route("GET", "/api/v1/campaigns/{campaign_id}/recipients", summary="A campaign's customers, paged",
           roles=MANAGERS, query=RecipientsQuery, response=RecipientPage)
async def list_recipients(call: ApiCall) -> RecipientPage:
    q: RecipientsQuery = call.query
    async with call.services.db.session() as session:
        campaign = await _campaign(session, call)
        statement = select(OutreachRecipient).where(OutreachRecipient.source == campaign.source,
                                                    OutreachRecipient.id > (q.after_id or 0))
        if q.status:
            statement = statement.where(OutreachRecipient.status == q.status)
        rows = (await session.scalars(statement.order_by(OutreachRecipient.id).limit(q.limit))).all()
    return RecipientPage(recipients=[RecipientOut.model_validate(row) for row in rows],
                         next_after_id=rows[-1].id if len(rows) == q.limit else None)


@api.route("POST", "/api/v1/campaigns/{campaign_id}/approve", summary="Approve a draft (hq_admin)",
           roles=[Role.HQ_ADMIN], body=EmptyBody, response=CampaignCreated)
async def approve_campaign(call: ApiCall) -> CampaignCreated:
    async with call.services.db.session() as session, session.begin():
        campaign = await _campaign(session, call, lock=True)
        if campaign.status != "draft":
            raise _refuse(409, "invalid_state", "status", f"campaign is {campaign.status}; only a draft is approved")
        campaign.status, campaign.approved_at = "approved", utcnow()
        campaign.approved_by = f"token:{call.principal.token_id}"
        return CampaignCreated(id=campaign.id, status=campaign.status)


@api.route("POST", "/api/v1/campaigns/{campaign_id}/launch", summary="Launch an approved campaign (now, or at "
           "send_at)", roles=MANAGERS, body=EmptyBody, response=CampaignCreated)
async def launch_campaign(call: ApiCall) -> CampaignCreated:
    async with call.services.db.session() as session, session.begin():
        campaign = await _campaign(session, call, lock=True)
        if campaign.status != "approved":
            problem = ("the campaign is not approved yet" if campaign.status == "draft"
                       else f"campaign is {await _status(session, campaign)}; only an approved campaign is launched")
            raise _refuse(409, "invalid_state", "status", problem)
        if not await anyone_to_send(session, Audience.model_validate(campaign.audience), config=call.services.config(OutreachConfig),
                                    members=call.services.config(MembersConfig),
                                    now=utcnow(), source=campaign.source, holdout_percent=campaign.holdout_percent,
                                    needs_member=campaign.coupon_template_code is not None):
            raise _refuse(422, "empty_audience", "audience", "no customer of this audience can be sent to")
        run_at = due_at(campaign)
        campaign.status = "scheduled" if run_at else "sending"
        await enqueue(session, LAUNCH_JOB, {"campaign_id": campaign.id}, dedupe_key=f"campaign-launch:{campaign.id}",
                      run_at=run_at, max_attempts=10)
        result = CampaignCreated(id=campaign.id, status=campaign.status)
    call.services.wake_runner()
    return result


@api.route("POST", "/api/v1/campaigns/{campaign_id}/cancel", summary="Cancel: nothing more is created, unconfirmed "
           "WeCom tasks are cancelled", roles=MANAGERS, body=EmptyBody, response=CancelOut)
async def cancel_campaign(call: ApiCall) -> CancelOut:
    async with call.services.db.session() as session, session.begin():
        campaign = await _campaign(session, call, lock=True)
        status = await _status(session, campaign)
        if status in ("finished", "cancelled"):
            raise _refuse(409, "invalid_state", "status", f"campaign is already {status}")
        campaign.status, campaign.cancelled_at = "cancelled", utcnow()
        launched = campaign.launched_at is not None
    cancelled = 0
    if launched:
        # Learn which guides already confirmed first: their delivered part cannot be recalled.
        await sync_outreach(call.services, campaign.source)
        cancelled = await cancel_outreach(call.services, campaign.source)
    return CancelOut(id=campaign.id, status="cancelled", cancelled_tasks=cancelled)


@api.route("POST", "/api/v1/campaigns/{campaign_id}/remind", summary="Remind the guides who have not confirmed "
           "(≤ 3 per 24 h)", roles=MANAGERS, body=EmptyBody, response=RemindOut)
async def remind_campaign(call: ApiCall) -> RemindOut:
    now = time.time()
    async with call.services.db.session() as session, session.begin():
        campaign = await _campaign(session, call, lock=True)
        status = await _status(session, campaign)
        if status not in ("sending", "sent"):
            raise _refuse(409, "invalid_state", "status", f"campaign is {status}; only a sent campaign is reminded")
        recent = [at for at in campaign.reminders if at > now - 86400]
        if len(recent) >= REMINDERS_PER_DAY:
            raise _refuse(429, "too_many_reminders", "remind",
                          f"at most {REMINDERS_PER_DAY} reminders per 24 h (WeCom's limit)")
        campaign.reminders = [*recent, now]
    reminded = await remind_outreach(call.services, campaign.source)
    return RemindOut(reminded_tasks=reminded, reminders_left_24h=REMINDERS_PER_DAY - len(recent) - 1)


@api.route("POST", "/api/v1/campaigns/{campaign_id}/sync", summary="Read results from WeCom now",
           roles=MANAGERS, body=EmptyBody, response=CampaignOut)
async def sync_campaign(call: ApiCall) -> CampaignOut:
    async with call.services.db.session() as session:
        campaign = await _campaign(session, call)
    if campaign.launched_at is not None:
        await sync_outreach(call.services, campaign.source)
        await finish_if_final(call.services, campaign.source)
    async with call.services.db.session() as session:
        return await campaign_detail(session, await _campaign(session, call))
