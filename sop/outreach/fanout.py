"""Fan-out: one job per (source, guide, chunk) creates that WeCom group-send task exactly once.

The job's dedupe key makes enqueueing idempotent (launching twice, two workers). The send row is
marked `creating` and committed before add_msg_template; a retry that finds it so (a crash, a
lost answer) first looks for the task in WeCom (get_groupmsg_list_v2 + the task's recipients)
and adopts it instead of creating a second. Coupons are issued before the task exists, so the
text that announces them is true. No transaction is open during a WeCom call.
"""

from __future__ import annotations

import logging
import re
import time

from sqlalchemy import func, select, update

from bot.jobs import JobContext, Retry, enqueue, tasks
from bot.members import coupons, ledger
from bot.members.errors import MemberError
from bot.storage import utcnow
from bot.stores.models import Guide, Store
from bot.wecom.client import WeComAPIError
from sop.outreach.config import outreach_config
from sop.outreach.models import OutreachPlan, OutreachRecipient, OutreachSend
from sop.outreach.plan import enqueue_many

log = logging.getLogger("sop.outreach")

SEND_JOB, NOTIFY_JOB, SYNC_JOB = "outreach.send", "outreach.notify_guide", "outreach.sync"
NO_RECEIVABLE_CUSTOMER = 41048
SENDER_PLACEHOLDERS = ("guide_name", "store_name")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
UPDATE_BATCH = 1000
SEND_PRIORITY, NOTIFY_PRIORITY = 5, 0  # tasks first: a guide's notice can wait a moment


def send_job_key(source: str, guide_userid: str, chunk: int) -> str:
    return f"outreach-send:{source}:{guide_userid}:{chunk}"


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in PLACEHOLDER.findall(text) if name not in SENDER_PLACEHOLDERS})


async def render_for_sender(session, text: str, guide_userid: str) -> str:
    row = (await session.execute(
        select(Guide.name, Store.name).outerjoin(Store, Store.code == Guide.store_code)
        .where(Guide.userid == guide_userid))).first()
    guide_name, store_name = (row or (None, None))
    return text.replace("{guide_name}", guide_name or "您的导购").replace("{store_name}", store_name or "门店")


async def _set_recipients(session, source: str, external_userids: list[str], *, only_status: str | None = None,
                          **values) -> None:
    for start in range(0, len(external_userids), UPDATE_BATCH):
        statement = update(OutreachRecipient).where(
            OutreachRecipient.source == source,
            OutreachRecipient.external_userid.in_(external_userids[start:start + UPDATE_BATCH]))
        if only_status:
            statement = statement.where(OutreachRecipient.status == only_status)
        await session.execute(statement.values(**values).execution_options(synchronize_session=False))


def _in_chunk(send: OutreachSend) -> tuple:
    return (OutreachRecipient.source == send.source, OutreachRecipient.guide_userid == send.guide_userid,
            OutreachRecipient.chunk == send.chunk)


async def _issue_coupons(db, plan: OutreachPlan, send: OutreachSend) -> None:
    """One coupon per planned customer of the chunk (idempotent per source and customer)."""
    config = outreach_config()
    while True:
        async with db.session() as session, session.begin():
            batch = (await session.scalars(
                select(OutreachRecipient).where(*_in_chunk(send), OutreachRecipient.status == "planned", OutreachRecipient.coupon_code.is_(None))
                .order_by(OutreachRecipient.id).limit(config.coupons_per_transaction))).all()
            if not batch:
                return
            for recipient in batch:
                try:
                    async with session.begin_nested():
                        member = await ledger.lock_member(session, recipient.member_id)
                        coupon = await coupons.issue_coupon(
                            session, member, plan.coupon_template_code, source="campaign",
                            key=f"{plan.source}:{recipient.external_userid}")
                    recipient.coupon_code = coupon.code
                except MemberError as exc:
                    recipient.status, recipient.reason = "skipped", f"coupon_{exc.code}"[:60]


async def _find_created_task(wecom, send: OutreachSend, recipients: list[str], known: set[str]) -> str | None:
    """A task this send may have created before a crash or a lost answer: its msgid, or None."""
    window = outreach_config().reconcile_window_seconds
    start = int((send.creating_since or time.time()) - window)
    wanted, cursor = set(recipients), None
    while True:
        listing = await wecom.externalcontact.get_groupmsg_list_v2(
            chat_type="single", start_time=start, end_time=int(time.time()) + 60, creator=send.guide_userid,
            filter_type=2, limit=100, cursor=cursor)
        for item in listing.get("group_msg_list", []):
            if item["msgid"] in known:
                continue
            result = await wecom.externalcontact.get_groupmsg_send_result(item["msgid"], send.guide_userid, limit=1000)
            if wanted & {row["external_userid"] for row in result.get("send_list", [])}:
                return item["msgid"]
        cursor = listing.get("next_cursor")
        if not cursor:
            return None


@tasks(SEND_JOB)
async def send_job(job: JobContext, payload: dict) -> None:
    services = job.services
    try:
        async with services.kv.lock(f"outreach-send:{payload['send_id']}", timeout=300, wait=5):
            await create_task_once(services, payload["send_id"])
    except TimeoutError:
        raise Retry(10, "another worker holds this send") from None


async def create_task_once(services, send_id: int) -> None:
    db, wecom = services.db, services.wecom
    async with db.session() as session:
        send, plan = (await session.execute(
            select(OutreachSend, OutreachPlan).join(OutreachPlan, OutreachPlan.source == OutreachSend.source)
            .where(OutreachSend.id == send_id))).one()
    if send.status in ("created", "failed", "cancelled"):
        await _after_send(db, plan, send)
        return
    if plan.status == "cancelled":
        async with db.session() as session, session.begin():
            await session.execute(update(OutreachSend).where(OutreachSend.id == send.id).values(status="cancelled"))
            await session.execute(update(OutreachRecipient).where(
                *_in_chunk(send), OutreachRecipient.status == "planned")
                .values(status="cancelled", reason="campaign_cancelled").execution_options(synchronize_session=False))
        return
    if plan.coupon_template_code:
        await _issue_coupons(db, plan, send)
    earlier_attempt = send.status == "creating"  # it may have created the task already
    async with db.session() as session, session.begin():
        recipients = list((await session.scalars(
            select(OutreachRecipient.external_userid).where(*_in_chunk(send), OutreachRecipient.status == "planned")
            .order_by(OutreachRecipient.id))).all())
        text = await render_for_sender(session, plan.content.get("text") or "", send.guide_userid)
        if recipients and not earlier_attempt:
            # Committed before the call: a crash from here on leaves a trace the next attempt sees.
            send.creating_since = time.time()
            await session.execute(update(OutreachSend).where(OutreachSend.id == send.id).values(
                status="creating", creating_since=send.creating_since))
    if not recipients:
        await _finish_send(db, plan, send, status="failed", error="no customer left to send to")
        return

    msgid = None
    if earlier_attempt:
        async with db.session() as session:
            known = set((await session.scalars(select(OutreachSend.msgid).where(
                OutreachSend.source == send.source, OutreachSend.guide_userid == send.guide_userid,
                OutreachSend.msgid.is_not(None)))).all())
        msgid = await _find_created_task(wecom, send, recipients, known)
        if msgid:
            log.info("send %s: adopting task %s created by an earlier attempt", send.id, msgid)
    fail_list: list[str] = []
    if msgid is None:
        try:
            answer = await wecom.externalcontact.add_msg_template(
                external_userid=recipients, sender=send.guide_userid,
                text={"content": text} if text else None, attachments=plan.content.get("attachments") or None)
        except WeComAPIError as exc:
            if getattr(exc, "retry_after", None) is not None:
                raise  # rate limited: the runner defers the job
            reason = "no_receivable_customer" if exc.errcode == NO_RECEIVABLE_CUSTOMER else f"errcode_{exc.errcode}"
            async with db.session() as session, session.begin():
                await _set_recipients(session, send.source, recipients, only_status="planned",
                                      status="failed", reason=reason)
            await _finish_send(db, plan, send, status="failed", error=str(exc))
            return
        msgid, fail_list = answer["msgid"], list(answer.get("fail_list") or [])
    send.status, send.msgid = "created", msgid
    async with db.session() as session, session.begin():
        await _set_recipients(session, send.source, recipients, only_status="planned", status="pending")
        if fail_list:
            await _set_recipients(session, send.source, fail_list, only_status="pending",
                                  status="failed", reason="fail_list")
        await session.execute(update(OutreachSend).where(OutreachSend.id == send.id)
                              .values(status="created", msgid=msgid, error=None))
        cancelled = await session.scalar(select(OutreachPlan.status).where(OutreachPlan.id == plan.id)) == "cancelled"
        await _after_send_in(session, plan, send)
    if cancelled:  # cancelled while this task was being created: stop it in WeCom too
        await cancel_send(services, send)
    await _complete_plan_if_done(db, plan)


async def _finish_send(db, plan: OutreachPlan, send: OutreachSend, *, status: str, error: str) -> None:
    send.status = status
    async with db.session() as session, session.begin():
        await session.execute(update(OutreachSend).where(OutreachSend.id == send.id)
                              .values(status=status, error=error[:2000]))
    await _complete_plan_if_done(db, plan)


async def _after_send(db, plan: OutreachPlan, send: OutreachSend) -> None:
    async with db.session() as session, session.begin():
        await _after_send_in(session, plan, send)
    await _complete_plan_if_done(db, plan)


async def _after_send_in(session, plan: OutreachPlan, send: OutreachSend) -> None:
    """Tell the guide once all their chunks exist (the notice job waits for the last one)."""
    if send.status == "created":
        # No wake-up: the notice is not urgent, and NOTIFY serialises commits on PostgreSQL.
        await enqueue_many(session, [(NOTIFY_JOB, {"source": plan.source, "guide_userid": send.guide_userid},
                                      f"outreach-notify:{plan.source}:{send.guide_userid}")],
                           priority=NOTIFY_PRIORITY, max_attempts=4, wake=False)


async def _complete_plan_if_done(db, plan: OutreachPlan) -> None:
    """The plan is `sent` once no send is open. Checked after the send's own commit, so the last
    of several sends finishing at once sees all the others done (inside, each sees the rest open)."""
    async with db.session() as session, session.begin():
        open_send = await session.scalar(select(OutreachSend.id).where(
            OutreachSend.source == plan.source, OutreachSend.status.in_(("planned", "creating"))).limit(1))
        if open_send is not None:
            return
        done = await session.execute(
            update(OutreachPlan).where(OutreachPlan.id == plan.id, OutreachPlan.status == "sending")
            .values(status="sent", sent_at=utcnow(), last_change_at=utcnow()).returning(OutreachPlan.id))
        if done.scalar_one_or_none() is not None:
            await enqueue(session, SYNC_JOB, {"source": plan.source}, dedupe_key=f"outreach-sync:{plan.source}:0",
                          delay=outreach_config().sync_delay_seconds)


@tasks(NOTIFY_JOB)
async def notify_guide_job(job: JobContext, payload: dict) -> None:
    """One app message per guide and source: which campaign, how many customers wait for them."""
    source, guide = payload["source"], payload["guide_userid"]
    async with job.services.db.session() as session:
        unfinished = await session.scalar(select(func.count()).select_from(OutreachSend).where(
            OutreachSend.source == source, OutreachSend.guide_userid == guide,
            OutreachSend.status.in_(("planned", "creating"))))
        if unfinished:
            raise Retry(5, "the guide's other chunks are still being created")
        waiting = await session.scalar(select(func.count()).select_from(OutreachRecipient).where(
            OutreachRecipient.source == source, OutreachRecipient.guide_userid == guide,
            OutreachRecipient.status == "pending"))
        title = await session.scalar(select(OutreachPlan.title).where(OutreachPlan.source == source))
    if not waiting:
        return
    settings = job.services.settings
    await job.services.wecom.message.send(
        touser=guide, msgtype="template_card",
        template_card={
            "card_type": "text_notice",
            "source": {"desc": "总部群发"},
            "main_title": {"title": f"群发任务：{title}"[:36], "desc": "请在企业微信「客户群发」中确认发送"},
            "emphasis_content": {"title": str(waiting), "desc": "位客户等待您确认"},
            "sub_title_text": f"{title}：{waiting} 位客户等待您确认发送。",
            "card_action": {"type": 1, "url": settings.public_base_url},
            "task_id": f"{source}-{guide}".replace(":", "-")[:128],
        },
        enable_duplicate_check=1)


async def cancel_send(services, send: OutreachSend) -> None:
    try:
        await services.wecom.externalcontact.cancel_groupmsg_send(send.msgid)
    except WeComAPIError as exc:
        log.warning("cancelling task %s failed: %s", send.msgid, exc)
    async with services.db.session() as session, session.begin():
        await session.execute(update(OutreachRecipient).where(
            *_in_chunk(send), OutreachRecipient.status.in_(("pending", "planned")))
            .values(status="cancelled", reason="campaign_cancelled").execution_options(synchronize_session=False))


async def cancel_outreach(services, source: str) -> int:
    """Stop a plan: unsent chunks are never created, created unconfirmed tasks are cancelled in WeCom."""
    async with services.db.session() as session, session.begin():
        await session.execute(update(OutreachPlan).where(OutreachPlan.source == source,
                                                         OutreachPlan.status != "finished")
                              .values(status="cancelled"))
        sends = (await session.scalars(select(OutreachSend).where(
            OutreachSend.source == source, OutreachSend.status == "created", OutreachSend.task_status != 2))).all()
        await session.execute(update(OutreachRecipient).where(
            OutreachRecipient.source == source, OutreachRecipient.status == "planned")
            .values(status="cancelled", reason="campaign_cancelled").execution_options(synchronize_session=False))
    for send in sends:
        await cancel_send(services, send)
    return len(sends)


async def remind_outreach(services, source: str) -> int:
    """Nudge every guide who has not confirmed yet (remind_groupmsg_send per task)."""
    async with services.db.session() as session:
        sends = (await session.scalars(select(OutreachSend).where(
            OutreachSend.source == source, OutreachSend.status == "created", OutreachSend.task_status != 2))).all()
    for send in sends:
        await services.wecom.externalcontact.remind_groupmsg_send(send.msgid)
    return len(sends)
