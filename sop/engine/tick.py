"""The tick (one pass: enrol, materialise due steps, queue the morning digests), its recurring
job, and what guides do with their items: push a guide_push step, complete a guide_task step.

One pass at a time (a KV lock), inside the outreach planning lock (the frequency cap is shared
with campaigns), in one transaction: sends are queued in it and published when it commits.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import and_, case, func, select, update

from bot.customers.models import Customer
from bot.jobs import JobContext, enqueue, tasks
from bot.jobs.cron import cron, seed_cron_jobs
from bot.members.config import MembersConfig
from bot.members.models import Coupon, Member
from bot.storage import utcnow
from sop.campaigns.launch import PLANNING_LOCK
from sop.engine.clock import at_local, local_day
from sop.engine.config import SopConfig
from sop.engine.engine import TickReport, Versions, enrol_all, expire_unpushed, pending_guides, zone_of
from sop.engine.materialise import apply_exits, apply_when, materialise, step_of
from sop.engine.models import SopItem, SopRun, SopTemplate
from sop.engine.outreach_adapter import plan_items
from sop.outreach.config import OutreachConfig
from sop.outreach.models import OutreachSend

log = logging.getLogger("sop.engine")

TICK_JOB, DIGEST_JOB, PUSH_JOB, REPLY_JOB = "sop.tick", "sop.digest", "sop.push", "sop.reply"
TICK_LOCK = "sop:tick"
NOT_YOURS = "没有第 {n} 项任务（发送「任务」查看您的任务列表）"


async def run_tick(services, at: dt.datetime | None = None) -> TickReport:
    """One pass as if the clock read `at` (default: now)."""
    now = at or utcnow()
    zone, config = zone_of(services), services.config(SopConfig)
    members, outreach = services.config(MembersConfig), services.config(OutreachConfig)
    report = TickReport(at=now)
    async with services.kv.lock(TICK_LOCK, timeout=600, wait=600), \
            services.kv.lock(PLANNING_LOCK, timeout=900, wait=900):
        async with services.db.session() as session, session.begin():
            await enrol_all(session, now, zone, report, members)
            await materialise(session, now, zone, report, members=members, outreach=outreach)
            await expire_unpushed(session, now, report)
            day = local_day(now, zone)
            morning = at_local(day, config.digest_at, zone)
            # Only in the morning (a pass that missed it catches up for a while, never at night).
            if morning <= now < morning + dt.timedelta(minutes=config.digest_catch_up_minutes):
                for guide in await pending_guides(session):
                    if await enqueue(session, DIGEST_JOB, {"guide": guide, "day": day.isoformat()},
                                     dedupe_key=f"sop-digest:{guide}:{day.isoformat()}", max_attempts=4):
                        report.digests += 1
    services.wake_runner()
    return report


TICK_CRON = cron("sop.tick", "* * * * *", TICK_JOB)  # start-up queues it; each run queues the next


async def schedule_tick(session, config: SopConfig) -> None:
    """Make sure the next minute's tick is queued (idempotent: the key names the minute)."""
    if config.tick_enabled:
        await seed_cron_jobs(session, jobs=[TICK_CRON])


@tasks(TICK_JOB)
async def tick_job(job: JobContext, payload: dict) -> None:
    if not job.services.config(SopConfig).tick_enabled:  # tests and backfills drive the clock themselves
        return
    report = await run_tick(job.services)
    log.info("sop tick: %s", report)


# The guide's items ---------------------------------------------------------------------------------

async def guide_items(session, guide: str) -> list[SopItem]:
    """Items that need this guide, oldest due first: what 「推送 N」/「完成 N」 number."""
    return list((await session.scalars(
        select(SopItem).join(SopTemplate, and_(SopTemplate.code == SopItem.code, SopTemplate.status == "active"))
        .where(SopItem.guide_userid == guide, SopItem.status == "waiting",
               SopItem.reach.in_(("guide_push", "guide_task")))
        .order_by(SopItem.due_at, SopItem.id))).all())


async def unconfirmed_sends(session, guide: str) -> int:
    return await session.scalar(select(func.count()).select_from(OutreachSend).where(
        OutreachSend.guide_userid == guide, OutreachSend.source.like("sop:%"), OutreachSend.status == "created",
        OutreachSend.task_status != 2)) or 0


async def render_for_customer(session, text: str, external_userid: str, now: dt.datetime) -> str:
    """A guide_task script for one customer: their name, points and first usable coupon."""
    name = await session.scalar(select(Customer.name).where(Customer.external_userid == external_userid))
    member = await session.scalar(select(Member).where(Member.external_userid == external_userid,
                                                       Member.status == "active"))
    coupon = None
    if member is not None:
        coupon = await session.scalar(select(Coupon).where(
            Coupon.member_id == member.id, Coupon.status == "issued", Coupon.valid_until > now)
            .order_by(Coupon.valid_until).limit(1))
    values = {"customer_name": name or "您", "points": str(member.points_balance if member else 0),
              "coupon_name": coupon.template_code if coupon else "",
              "coupon_expires": coupon.valid_until.strftime("%m月%d日") if coupon else ""}
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


async def task_list_text(session, guide: str, now: dt.datetime) -> str:
    items = await guide_items(session, guide)
    waiting = await unconfirmed_sends(session, guide)
    versions = Versions(session)
    lines = []
    for number, item in enumerate(items, 1):
        document = await versions.get(item.code, item.version)
        action = "推送" if item.reach == "guide_push" else "完成"
        lines.append(f"{number}. {document.name}·{item.step_key}：{item.customers} 位客户（回复「{action} {number}」）")
        if item.reach == "guide_task":
            step = step_of(document, item.step_key)
            text = ((step.overrides or {}).get(item.store_code or "") or step.content).text or ""
            runs = (await session.scalars(select(SopRun).where(SopRun.item_id == item.id, SopRun.status == "queued")
                                          .order_by(SopRun.id).limit(10))).all()
            for run in runs:
                lines.append(f"   · {await render_for_customer(session, text, run.external_userid, now)}")
    if not lines:
        lines.append("今天没有待处理的SOP任务。")
    if waiting:
        lines.append(f"另有 {waiting} 个群发任务等待您在企业微信「客户群发」中确认。")
    return "\n".join(lines)


async def item_number(session, guide: str, number: int) -> SopItem | None:
    items = await guide_items(session, guide)
    return items[number - 1] if 1 <= number <= len(items) else None


async def push_item(services, guide: str, item_id: int, now: dt.datetime | None = None) -> tuple[bool, str]:
    """Create the group send of a guide_push item of this guide; (done, reply). Nothing changes
    when it is not theirs, not waiting, or its SOP is paused."""
    now = now or utcnow()
    async with services.kv.lock(PLANNING_LOCK, timeout=900, wait=900):
        async with services.db.session() as session, session.begin():
            item = await session.scalar(select(SopItem).where(SopItem.id == item_id).with_for_update())
            if item is None or item.guide_userid != guide or item.reach != "guide_push":
                return False, "没有这项可推送的任务"
            template = await session.scalar(select(SopTemplate).where(SopTemplate.code == item.code))
            if template.status != "active":
                return False, "该SOP已暂停，暂不能推送"
            if item.status != "waiting":
                return False, "这项任务已经推送过了"
            if now > item.deadline_at:
                return False, "已过这一步的发送时段，不再推送"
            document = await Versions(session).get(item.code, item.version)
            step = step_of(document, item.step_key)
            # Exits and `when` again: time passed since it was listed.
            runs = [SopRun.item_id == item.id, SopRun.status == "queued"]
            members = services.config(MembersConfig)
            await apply_exits(session, item.code, document.exit_on, runs, now, members)
            await apply_when(session, step, runs, now, members)
            ready = await session.scalar(select(func.count()).select_from(SopRun).where(*runs))
            if not ready:
                item.status, item.acted_at, item.note = "done", now, "nobody left to send to"
                return True, "这一步的客户都已不再需要发送（已购买或已不是好友），任务已关闭"
            item.status = "sending"
            await session.flush()
            await session.execute(update(SopRun).where(*runs).values(status="planning"))
            outreach = services.config(OutreachConfig)
            await plan_items(session, document, step, (SopItem.id == item.id,), now, outreach)
    services.wake_runner()
    return True, f"已为 {ready} 位客户创建群发任务，请在企业微信「客户群发」中确认发送"


async def complete_item(session, guide: str, item: SopItem | None, now: dt.datetime) -> tuple[bool, str]:
    if item is None or item.guide_userid != guide or item.reach != "guide_task":
        return False, "没有这项可完成的任务"
    if item.status != "waiting":
        return False, "这项任务已经完成了"
    runs = (await session.scalars(select(SopRun).where(SopRun.item_id == item.id, SopRun.status == "queued"))).all()
    for run in runs:
        run.status, run.updated_at = "done", now
    item.status, item.acted_at = "done", now
    return True, f"已完成：{len(runs)} 位客户"


async def completion_text(session, guide: str) -> str:
    rows = (await session.execute(select(SopItem.reach, SopItem.status, func.count(), func.sum(SopItem.customers))
                                  .where(SopItem.guide_userid == guide).group_by(SopItem.reach, SopItem.status))).all()
    counts = {(reach, status): (int(n), int(c or 0)) for reach, status, n, c in rows}

    def items(reach, *statuses):
        return sum(counts.get((reach, s), (0, 0))[0] for s in statuses)

    sends = (await session.execute(select(func.count(), func.sum(case((OutreachSend.task_status == 2, 1), else_=0)))
                                   .where(OutreachSend.guide_userid == guide, OutreachSend.source.like("sop:%"),
                                          OutreachSend.status == "created"))).one()
    created, confirmed = int(sends[0] or 0), int(sends[1] or 0)
    return "\n".join([
        "SOP完成情况：",
        f"推送任务：已推送 {items('guide_push', 'pushed', 'done')} / 共 {items('guide_push', 'waiting', 'pushed', 'done')}",
        f"一对一任务：已完成 {items('guide_task', 'done')} / 共 {items('guide_task', 'waiting', 'done')}",
        f"群发任务：已确认发送 {confirmed} / 共 {created}",
    ])


# Jobs ---------------------------------------------------------------------------------------------

@tasks(REPLY_JOB)
async def reply_job(job: JobContext, payload: dict) -> None:
    from sop.engine.cards import update_card

    if payload.get("response_code"):  # a tapped card: grey its button out with what happened
        await update_card(job.services, payload["touser"], payload["response_code"], payload.get("label") or "已处理")
    if payload.get("content"):
        await job.services.wecom.message.send_text(payload["touser"], payload["content"])


@tasks(PUSH_JOB)
async def push_job(job: JobContext, payload: dict) -> None:
    """A push asked from the app: done first, then the guide told — never the other way round.
    A tapped card says it on its button (update_template_card is no app message); a text only
    when the push was refused, to say why."""
    from sop.engine.cards import update_card

    done, reply = await push_item(job.services, payload["guide"], payload["item_id"])
    if payload.get("response_code"):
        await update_card(job.services, payload["guide"], payload["response_code"], "已推送" if done else "未推送")
        if done:
            return
    await job.services.wecom.message.send_text(payload["guide"], reply)


@tasks(DIGEST_JOB)
async def digest_job(job: JobContext, payload: dict) -> None:
    """One card per guide and day: their pending items, buttons for the first few."""
    from sop.engine.cards import digest_card

    guide, now = payload["guide"], utcnow()
    async with job.services.db.session() as session:
        items = await guide_items(session, guide)
        waiting = await unconfirmed_sends(session, guide)
        if not items and not waiting:
            return
        config = job.services.config(SopConfig)
        card = await digest_card(session, config, guide, payload["day"], items, waiting, now)
    await job.services.wecom.message.send(touser=guide, msgtype="template_card", template_card=card)
