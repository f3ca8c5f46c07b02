"""Results from WeCom: per task (get_groupmsg_task) and per customer (get_groupmsg_send_result),
cursor-paged, for every task of a source. A recurring job re-runs it while results can change."""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import func, select, update

from bot.jobs import JobContext, enqueue, tasks
from bot.storage import utcnow
from sop.outreach.config import OutreachConfig
from sop.outreach.fanout import SYNC_JOB, _set_recipients
from sop.outreach.models import OutreachPlan, OutreachRecipient, OutreachSend

log = logging.getLogger("sop.outreach.sync")

TASK_SENT = 2
# get_groupmsg_send_result status → our recipient status (0, not sent yet, stays pending)
RESULT_STATUS = {1: "sent", 2: "not_friend", 3: "over_cap"}
PAGE = 1000


async def _paged(call, key: str, *args) -> list[dict]:
    rows, cursor = [], None
    while True:
        answer = await call(*args, limit=PAGE, cursor=cursor)
        rows.extend(answer.get(key, []))
        cursor = answer.get("next_cursor")
        if not cursor:
            return rows


async def sync_send(services, send: OutreachSend) -> int:
    """Read one task's progress and per-customer results; returns how many recipients changed."""
    wecom, db = services.wecom, services.db
    task_rows = await _paged(wecom.externalcontact.get_groupmsg_task, "task_list", send.msgid)
    task = next((row for row in task_rows if row.get("userid") == send.guide_userid), None)
    if task is None or task.get("status") != TASK_SENT:
        return 0  # not confirmed: every customer still waits
    results = await _paged(wecom.externalcontact.get_groupmsg_send_result, "send_list", send.msgid,
                           send.guide_userid)
    by_status: dict[str, list[str]] = {}
    send_times: dict[int, list[str]] = {}
    for row in results:
        status = RESULT_STATUS.get(row.get("status"))
        if status:
            by_status.setdefault(status, []).append(row["external_userid"])
        if status == "sent":
            send_times.setdefault(int(row.get("send_time") or task.get("send_time") or time.time()), []).append(
                row["external_userid"])
    changed = 0
    async with db.session() as session, session.begin():
        before = await _pending_count(session, send)
        for sent_time, external_userids in send_times.items():
            at = dt.datetime.fromtimestamp(sent_time, dt.UTC)
            await _set_recipients(session, send.source, external_userids, only_status="pending", status="sent",
                                  sent_at=at)
        for status in ("not_friend", "over_cap"):
            if by_status.get(status):
                await _set_recipients(session, send.source, by_status[status], only_status="pending",
                                      status=status, reason="wecom")
        changed = before - await _pending_count(session, send)
        if send.task_status != TASK_SENT:
            confirmed = dt.datetime.fromtimestamp(int(task.get("send_time") or time.time()), dt.UTC)
            await session.execute(update(OutreachSend).where(OutreachSend.id == send.id)
                                  .values(task_status=TASK_SENT, confirmed_at=confirmed))
            changed += 1
    return changed


async def _pending_count(session, send: OutreachSend) -> int:
    return await session.scalar(select(func.count()).select_from(OutreachRecipient).where(
        OutreachRecipient.source == send.source, OutreachRecipient.guide_userid == send.guide_userid,
        OutreachRecipient.chunk == send.chunk, OutreachRecipient.status == "pending"))


async def sync_outreach(services, source: str) -> int:
    """Sync every task of the source that can still change; returns the number of changes."""
    async with services.db.session() as session:
        sends = (await session.scalars(select(OutreachSend).where(
            OutreachSend.source == source, OutreachSend.status == "created").order_by(OutreachSend.id))).all()
        pending_chunks = set((await session.execute(
            select(OutreachRecipient.guide_userid, OutreachRecipient.chunk).where(
                OutreachRecipient.source == source, OutreachRecipient.status == "pending").distinct())).tuples())
    changed = 0
    for send in sends:
        if send.task_status == TASK_SENT and (send.guide_userid, send.chunk) not in pending_chunks:
            continue  # confirmed and every customer final: nothing left to learn
        changed += await sync_send(services, send)
    now = utcnow()
    async with services.db.session() as session, session.begin():
        values = {"synced_at": now, "sync_runs": OutreachPlan.sync_runs + 1}
        if changed:
            values["last_change_at"] = now
        await session.execute(update(OutreachPlan).where(OutreachPlan.source == source).values(**values))
    return changed


async def finish_if_final(services, source: str) -> bool:
    """`finished` when every task is confirmed and every customer final, or nothing moved for long."""
    config = services.config(OutreachConfig)
    async with services.db.session() as session, session.begin():
        plan = await session.scalar(select(OutreachPlan).where(OutreachPlan.source == source))
        if plan.status not in ("sent", "cancelled"):
            return plan.status == "finished"
        open_tasks = await session.scalar(select(OutreachSend.id).where(
            OutreachSend.source == source, OutreachSend.status == "created",
            OutreachSend.task_status != TASK_SENT).limit(1))
        pending = await session.scalar(select(OutreachRecipient.id).where(
            OutreachRecipient.source == source, OutreachRecipient.status == "pending").limit(1))
        idle_since = plan.last_change_at or plan.sent_at or plan.planned_at
        idle = utcnow() - idle_since >= dt.timedelta(days=config.finish_after_idle_days)
        if plan.status == "cancelled" or (open_tasks is None and pending is None) or idle:
            if plan.status != "cancelled":
                plan.status = "finished"
            return True
    return False


@tasks(SYNC_JOB)
async def sync_job(job: JobContext, payload: dict) -> None:
    """Sync now; while results can change, run again later (sooner after a change)."""
    source = payload["source"]
    config = job.services.config(OutreachConfig)
    changed = await sync_outreach(job.services, source)
    if await finish_if_final(job.services, source):
        return
    async with job.services.db.session() as session, session.begin():
        plan = await session.scalar(select(OutreachPlan).where(OutreachPlan.source == source))
        idle_runs = 0 if changed else min(plan.sync_runs, 10)
        delay = min(config.sync_max_delay_seconds, config.sync_delay_seconds * 2 ** idle_runs)
        await enqueue(session, SYNC_JOB, {"source": source},
                      dedupe_key=f"outreach-sync:{source}:{plan.sync_runs}", delay=delay)
