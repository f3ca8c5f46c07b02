"""Fan-out: one job per (source, guide, chunk) creates that WeCom group-send task exactly once.

The job's dedupe key makes enqueueing idempotent (launching twice, two workers). The send row is
marked `creating` and committed before add_msg_template; a retry that finds it so (a crash, a
lost answer) first looks for the task in WeCom (get_groupmsg_list_v2 + the task's recipients)
and adopts it instead of creating a second. Coupons are issued before the task exists, so the
text that announces them is true. No transaction is open during a WeCom call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from contextlib import AsyncExitStack

from sqlalchemy import func, select, update

from bot.jobs import JobContext, Priority, Retry, enqueue, tasks
from bot.members import coupons, ledger
from bot.members.errors import MemberError
from bot.storage import utcnow
from bot.stores.models import Guide, Store
from bot.wecom.client import WeComAPIError
from sop.outreach.config import OutreachConfig
from sop.outreach.models import OutreachPlan, OutreachRecipient, OutreachSend
from sop.outreach.plan import enqueue_many

log = logging.getLogger("sop.outreach")

SEND_JOB, NOTIFY_JOB, SYNC_JOB = "outreach.send", "outreach.notify_guide", "outreach.sync"
NO_RECEIVABLE_CUSTOMER = 41048
SENDER_PLACEHOLDERS = ("guide_name", "store_name")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
UPDATE_BATCH = 1000
CALLS_PER_BATCH = 8  # add_msg_template calls one batch job has in flight at once
# Sources whose guides hear of their tasks another way: the SOP engine sends each guide one
# morning card counting them. A notice per task would flood a guide with many SOP steps (WeCom
# drops app messages past 30 a minute per member).
QUIET_SOURCE_PREFIXES = ("sop:",)


def send_job_key(source: str, guide_userid: str, chunk: int) -> str:
    return f"outreach-send:{source}:{guide_userid}:{chunk}"


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in PLACEHOLDER.findall(text) if name not in SENDER_PLACEHOLDERS})


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


async def _issue_coupons(db, config: OutreachConfig, plan: OutreachPlan, send: OutreachSend) -> None:
    """One coupon per planned customer of the chunk (idempotent per source and customer)."""
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


async def _find_created_task(wecom, send: OutreachSend, recipients: list[str], known: set[str],
                             window: int) -> str | None:
    """A task this send may have created before a crash or a lost answer (up to `window` seconds
    before it started): its msgid, or None."""
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


@tasks(SEND_JOB, priority=Priority.OUTREACH)  # tasks first: a guide's notice (NORMAL) can wait a moment
async def send_job(job: JobContext, payload: dict) -> None:
    """Create the WeCom tasks of a batch of sends (one per guide and chunk), each exactly once."""
    services, busy = job.services, []
    async with AsyncExitStack() as held:
        mine = []
        for send_id in payload["send_ids"]:
            try:  # a send another worker is creating right now is left to it
                await held.enter_async_context(services.kv.lock(f"outreach-send:{send_id}", timeout=300, wait=0.5))
                mine.append(send_id)
            except TimeoutError:
                busy.append(send_id)
        if mine:
            await create_tasks_once(services, mine)
    if busy:
        raise Retry(10, f"{len(busy)} send(s) held by another worker")


def send_batches(source: str, sends: list[tuple[int, str, int]], size: int) -> list[tuple[str, dict, str]]:
    """(kind, payload, key) jobs for sends ordered by guide and chunk; the key names the first."""
    ordered = sorted(sends, key=lambda send: (send[1], send[2]))
    return [(SEND_JOB, {"send_ids": [send[0] for send in batch]}, send_job_key(source, batch[0][1], batch[0][2]))
            for batch in (ordered[i:i + size] for i in range(0, len(ordered), size))]


async def _set_recipients_by_id(session, ids: list[int], **values) -> None:
    for start in range(0, len(ids), UPDATE_BATCH):
        await session.execute(update(OutreachRecipient).where(OutreachRecipient.id.in_(ids[start:start + UPDATE_BATCH]))
                              .values(**values).execution_options(synchronize_session=False))


async def _render_for_senders(session, text: str, guides: set[str]) -> dict[str, str]:
    rows = (await session.execute(
        select(Guide.userid, Guide.name, Store.name).outerjoin(Store, Store.code == Guide.store_code)
        .where(Guide.userid.in_(guides)))).all()
    names = {userid: (guide_name, store_name) for userid, guide_name, store_name in rows}
    rendered = {}
    for guide in guides:
        guide_name, store_name = names.get(guide, (None, None))
        rendered[guide] = text.replace("{guide_name}", guide_name or "您的导购").replace(
            "{store_name}", store_name or "门店")
    return rendered


async def _create_one(services, plan: OutreachPlan, send: OutreachSend, recipients: list[str], text: str,
                      earlier_attempt: bool) -> tuple:
    """("created", msgid, fail_list) or ("failed", error, reason) for one send; transient errors raise."""
    wecom = services.wecom
    if earlier_attempt:  # the task may exist already: find it instead of making a second
        async with services.db.session() as session:
            known = set((await session.scalars(select(OutreachSend.msgid).where(
                OutreachSend.source == send.source, OutreachSend.guide_userid == send.guide_userid,
                OutreachSend.msgid.is_not(None)))).all())
        msgid = await _find_created_task(wecom, send, recipients, known,
                                         services.config(OutreachConfig).reconcile_window_seconds)
        if msgid:
            log.info("send %s: adopting task %s created by an earlier attempt", send.id, msgid)
            return ("created", msgid, [])
    try:
        answer = await wecom.externalcontact.add_msg_template(
            external_userid=recipients, sender=send.guide_userid, text={"content": text} if text else None,
            attachments=plan.content.get("attachments") or None)
    except WeComAPIError as exc:
        if getattr(exc, "retry_after", None) is not None:
            raise  # rate limited: the runner defers the job
        reason = "no_receivable_customer" if exc.errcode == NO_RECEIVABLE_CUSTOMER else f"errcode_{exc.errcode}"
        return ("failed", str(exc), reason)
    return ("created", answer["msgid"], list(answer.get("fail_list") or []))


async def create_tasks_once(services, send_ids: list[int]) -> None:
    db, config = services.db, services.config(OutreachConfig)
    async with db.session() as session:
        rows = (await session.execute(
            select(OutreachSend, OutreachPlan).join(OutreachPlan, OutreachPlan.source == OutreachSend.source)
            .where(OutreachSend.id.in_(send_ids)).order_by(OutreachSend.id))).all()
    plan = rows[0][1]
    sends = [send for send, _ in rows if send.status in ("planned", "creating")]
    if not sends:
        await _complete_plan_if_done(db, config, plan)
        return
    if plan.status == "cancelled":
        async with db.session() as session, session.begin():
            for send in sends:
                await session.execute(update(OutreachSend).where(OutreachSend.id == send.id).values(status="cancelled"))
                await session.execute(update(OutreachRecipient).where(*_in_chunk(send), OutreachRecipient.status == "planned")
                                      .values(status="cancelled", reason="campaign_cancelled")
                                      .execution_options(synchronize_session=False))
        return
    if plan.coupon_template_code:
        for send in sends:
            await _issue_coupons(db, config, plan, send)
    earlier = {send.id for send in sends if send.status == "creating"}
    wanted = {(send.guide_userid, send.chunk) for send in sends}
    chunks: dict[tuple[str, int], list[tuple[int, str]]] = {key: [] for key in wanted}
    async with db.session() as session, session.begin():
        rows = await session.execute(
            select(OutreachRecipient.id, OutreachRecipient.external_userid, OutreachRecipient.guide_userid,
                   OutreachRecipient.chunk)
            .where(OutreachRecipient.source == plan.source, OutreachRecipient.status == "planned",
                   OutreachRecipient.guide_userid.in_({guide for guide, _ in wanted}))
            .order_by(OutreachRecipient.id))
        for recipient_id, external_userid, guide, chunk in rows.tuples():
            if (guide, chunk) in chunks:
                chunks[(guide, chunk)].append((recipient_id, external_userid))
        texts = await _render_for_senders(session, plan.content.get("text") or "", {guide for guide, _ in wanted})
        fresh = [send.id for send in sends if send.id not in earlier and chunks[(send.guide_userid, send.chunk)]]
        if fresh:
            # Committed before any call: a crash from here on leaves a trace the next attempt sees.
            await session.execute(update(OutreachSend).where(OutreachSend.id.in_(fresh))
                                  .values(status="creating", creating_since=time.time()))
    calls = asyncio.Semaphore(CALLS_PER_BATCH)

    async def create(send: OutreachSend):
        recipients = [external_userid for _, external_userid in chunks[(send.guide_userid, send.chunk)]]
        if not recipients:
            return ("failed", "no customer left to send to", None)
        async with calls:
            return await _create_one(services, plan, send, recipients, texts[send.guide_userid], send.id in earlier)

    outcomes = await asyncio.gather(*(create(send) for send in sends), return_exceptions=True)
    created = []
    async with db.session() as session, session.begin():
        for send, outcome in zip(sends, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                continue  # left `creating`: the retry looks for the task first
            ids = {external_userid: recipient_id for recipient_id, external_userid in chunks[(send.guide_userid, send.chunk)]}
            if outcome[0] == "created":
                _, msgid, fail_list = outcome
                failed = [ids[external_userid] for external_userid in fail_list if external_userid in ids]
                await _set_recipients_by_id(session, sorted(set(ids.values()) - set(failed)), status="pending")
                await _set_recipients_by_id(session, failed, status="failed", reason="fail_list")
                await session.execute(update(OutreachSend).where(OutreachSend.id == send.id)
                                      .values(status="created", msgid=msgid, error=None))
                send.status, send.msgid = "created", msgid
                created.append(send)
            else:
                _, error, reason = outcome
                if reason:
                    await _set_recipients_by_id(session, list(ids.values()), status="failed", reason=reason)
                await session.execute(update(OutreachSend).where(OutreachSend.id == send.id)
                                      .values(status="failed", error=error[:2000]))
        cancelled = await session.scalar(select(OutreachPlan.status).where(OutreachPlan.id == plan.id)) == "cancelled"
        # No wake-up: the notices are not urgent, and NOTIFY serialises commits on PostgreSQL.
        await enqueue_many(session, [(NOTIFY_JOB, {"source": plan.source, "guide_userid": send.guide_userid},
                                      f"outreach-notify:{plan.source}:{send.guide_userid}") for send in created
                                     if not plan.source.startswith(QUIET_SOURCE_PREFIXES)],
                           max_attempts=4, wake=False)
    if cancelled:  # cancelled while these tasks were being created: stop them in WeCom too
        for send in created:
            await cancel_send(services, send)
    await _complete_plan_if_done(db, config, plan)
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if errors:
        raise errors[0]


async def _complete_plan_if_done(db, config: OutreachConfig, plan: OutreachPlan) -> None:
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
                          delay=config.sync_delay_seconds)


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
