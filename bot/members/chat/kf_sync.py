"""Pull 微信客服 messages from the stored cursor; each message is taken in exactly once.

Runs inside the inbox handler's transaction, under the per-account KV lock of the dispatcher
(`customer:<OpenKfId>`) and a row lock on the cursor. The cursor, the taken-in msgids and one
answering job per customer commit together: a crash before the commit re-reads the same messages;
after it, they are never read again. The msgids are kept as well, so a cursor that WeCom replays
(or one restored from a backup) still cannot answer a message twice.

Intake is a few statements per page whatever its size; the answers are worked out by the
`kf.answer` jobs, customers in parallel, each customer's messages in order (answering.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs import insert_jobs, job_row
from bot.members.config import members_config
from bot.members.models import KfCursor, KfMessage
from bot.storage import Database, utcnow
from bot.wecom.client import WeComAPIError

MAX_PAGES = 50  # per callback: WeCom may answer empty pages with has_more=1; the next callback resumes
INVALID_SYNC_TOKEN = 95007
ANSWER_JOB = "kf.answer"
# received_at is stamped by the web process, synced_at by a worker: allow for their clocks to differ.
CLOCK_MARGIN = dt.timedelta(milliseconds=50)
SYNCED_TTL_SECONDS = 600  # a callback older than this is long past its sync anyway


async def _locked_cursor(session: AsyncSession, db: Database, open_kfid: str) -> KfCursor:
    locked = select(KfCursor).where(KfCursor.open_kfid == open_kfid).with_for_update() \
        .execution_options(populate_existing=True)
    row = await session.scalar(locked)
    if row is None:  # the account's first message
        await session.execute(db.insert(KfCursor).values(open_kfid=open_kfid, cursor="", updated_at=utcnow())
                              .on_conflict_do_nothing(index_elements=["open_kfid"]))
        row = await session.scalar(locked)
    return row


def _synced_key(open_kfid: str) -> str:
    return f"kf:synced_at:{open_kfid}"


async def synced_since(kv, open_kfid: str, received_at: dt.datetime) -> bool:
    """A committed sync began after this callback arrived, so it read the callback's messages
    (WeCom queues a message before it calls back): nothing to do, not even locking the cursor."""
    synced = await kv.get(_synced_key(open_kfid))
    return synced is not None and float(synced) >= (received_at + CLOCK_MARGIN).timestamp()


def _remember_sync(kv, open_kfid: str, synced: float) -> None:
    # after_commit is synchronous: the KV write runs as a task (losing it only costs a cursor read).
    asyncio.get_running_loop().create_task(kv.set(_synced_key(open_kfid), repr(synced), ttl=SYNCED_TTL_SECONDS))


async def _page(kf, open_kfid: str, cursor: str, token: str | None) -> dict:
    try:
        return await kf.sync_msg(open_kfid=open_kfid, cursor=cursor or None, token=token, limit=1000)
    except WeComAPIError as exc:
        if exc.errcode != INVALID_SYNC_TOKEN or token is None:
            raise
        # The callback's token lives 10 minutes; a late retry reads without it.
        return await kf.sync_msg(open_kfid=open_kfid, cursor=cursor or None, limit=1000)


def _customer_of(message: dict) -> str:
    if message.get("msgtype") == "event":
        return (message.get("event") or {}).get("external_userid") or message.get("external_userid") or ""
    return message.get("external_userid") or ""


async def sync_and_answer(
    session: AsyncSession, services, open_kfid: str, token: str | None, received_at: dt.datetime | None = None
) -> int:
    """Take in everything new for the account and queue its answering; returns messages taken in.

    `received_at`: when this callback arrived. A sync that began after that has already read every
    message the callback announces (WeCom queues a message before it calls back), so a burst of
    callbacks costs one read, not one each.
    """
    row = await _locked_cursor(session, services.db, open_kfid)
    if received_at is not None and row.synced_at is not None and row.synced_at >= received_at + CLOCK_MARGIN:
        return 0
    row.synced_at = utcnow()
    # Known to the other callbacks of the burst once committed (never before: a rolled-back sync read nothing).
    synced, kv = row.synced_at.timestamp(), getattr(services, "kv", None)
    if kv is not None:
        event.listen(session.sync_session, "after_commit",
                     lambda _session: _remember_sync(kv, open_kfid, synced), once=True)
    cursor, taken = row.cursor, 0
    for _ in range(MAX_PAGES):
        page = await _page(services.wecom.kf, open_kfid, cursor, token)
        taken += await _take_in(session, services.db, open_kfid, page.get("msg_list") or [])
        cursor = page.get("next_cursor") or cursor
        if not page.get("has_more"):
            break
    row.cursor = cursor
    return taken


async def _take_in(session: AsyncSession, db: Database, open_kfid: str, messages: list[dict]) -> int:
    """Record the page's new msgids (one statement) and queue one answering job per customer."""
    messages = [m for m in messages if m.get("msgid") and _customer_of(m)]
    if not messages:
        return 0
    now = utcnow()
    inserted = await session.execute(
        db.insert(KfMessage).values([
            {"msgid": str(m["msgid"])[:64], "open_kfid": open_kfid, "external_userid": _customer_of(m)[:64],
             "intent": "", "handled_at": now} for m in messages])
        .on_conflict_do_nothing(index_elements=["msgid"]).returning(KfMessage.msgid))
    new = set(inserted.scalars())
    by_customer: dict[str, list[dict]] = {}
    for message in messages:  # in WeCom's order: a customer's tap and confirmation stay in order
        if str(message["msgid"])[:64] in new:
            by_customer.setdefault(_customer_of(message), []).append(message)
    if by_customer:
        priority = members_config().chat_reply_priority
        await insert_jobs(session, [
            job_row(ANSWER_JOB, {"open_kfid": open_kfid, "external_userid": who, "messages": batch},
                    dedupe_key=f"{ANSWER_JOB}:{batch[0]['msgid']}", priority=priority)
            for who, batch in by_customer.items()])
    return len(new)
