"""Pull 微信客服 messages from the stored cursor; each message is taken in and answered exactly once.

Runs inside the inbox handler's transaction, under the per-account KV lock of the dispatcher
(`customer:<OpenKfId>`) and a row lock on the cursor. The cursor, the taken-in msgids, their
answers and one job that sends them commit together: a crash before the commit re-reads the same
messages; after it, they are never read again. The msgids are kept as well, so a cursor that
WeCom replays (or one restored from a backup) still cannot answer a message twice.

A whole burst is one sync: every page read in one go, its messages answered in one batch
(answering.py), a callback whose messages a committed sync already read costs no sync at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.members.chat.answering import answer_messages, customer_of, queue_sending
from bot.members.config import MembersConfig
from bot.members.models import KfCursor, KfMessage
from bot.storage import Database, utcnow
from bot.wecom.client import WeComAPIError

MAX_PAGES = 50  # per callback: WeCom may answer empty pages with has_more=1; the next callback resumes
INVALID_SYNC_TOKEN = 95007
# received_at is stamped by the web process, synced_at by a worker: allow for their clocks to differ.
CLOCK_MARGIN = dt.timedelta(milliseconds=50)
SYNCED_TTL_SECONDS = 600  # a callback older than this is long past its sync anyway
_CURSORS = KfCursor.__table__
_MESSAGES = KfMessage.__table__


async def _locked_cursor(session: AsyncSession, db: Database, open_kfid: str):
    """(cursor, synced_at) of the account, its row locked until the commit."""
    locked = select(_CURSORS.c.cursor, _CURSORS.c.synced_at).where(_CURSORS.c.open_kfid == open_kfid).with_for_update()
    row = (await session.execute(locked)).first()
    if row is None:  # the account's first message
        await session.execute(db.insert(_CURSORS).values(open_kfid=open_kfid, cursor="", updated_at=utcnow())
                              .on_conflict_do_nothing(index_elements=["open_kfid"]))
        row = (await session.execute(locked)).first()
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


async def sync_and_answer(
    session: AsyncSession, services, open_kfid: str, token: str | None, received_at: dt.datetime | None = None,
    after_commit=None,
) -> int:
    """Take in everything new for the account, answer it and queue the sending; returns messages taken in.

    `received_at`: when this callback arrived. A sync that began after that has already read every
    message the callback announces (WeCom queues a message before it calls back), so a burst of
    callbacks costs one read, not one each. `after_commit`: the answers are sent by the caller right
    after the commit (answering.queue_sending).
    """
    db = services.db
    row = await _locked_cursor(session, db, open_kfid)
    if received_at is not None and row.synced_at is not None and row.synced_at >= received_at + CLOCK_MARGIN:
        return 0
    synced_at = utcnow()
    # Known to the other callbacks of the burst once committed (never before: a rolled-back sync read nothing).
    kv = getattr(services, "kv", None)
    if kv is not None:
        event.listen(session.sync_session, "after_commit",
                     lambda _session: _remember_sync(kv, open_kfid, synced_at.timestamp()), once=True)
    cursor, new = row.cursor, []
    for _ in range(MAX_PAGES):
        page = await _page(services.wecom.kf, open_kfid, cursor, token)
        new += await _take_in(session, db, open_kfid, page.get("msg_list") or [])
        cursor = page.get("next_cursor") or cursor
        if not page.get("has_more"):
            break
    await session.execute(_CURSORS.update().where(_CURSORS.c.open_kfid == open_kfid)
                          .values(cursor=cursor, synced_at=synced_at, updated_at=utcnow()))
    config = services.config(MembersConfig)
    await queue_sending(session, await answer_messages(session, db, config, open_kfid, new), services.wecom,
                        after_commit)
    return len(new)


async def _take_in(session: AsyncSession, db: Database, open_kfid: str, messages: list[dict]) -> list[dict]:
    """Record the page's msgids (one statement); the messages not seen before, in WeCom's order."""
    messages = [m for m in messages if m.get("msgid") and customer_of(m)]
    if not messages:
        return []
    now = utcnow()
    inserted = await session.execute(
        db.insert(_MESSAGES).values([
            {"msgid": str(m["msgid"])[:64], "open_kfid": open_kfid, "external_userid": customer_of(m)[:64],
             "intent": "", "handled_at": now} for m in messages])
        .on_conflict_do_nothing(index_elements=["msgid"]).returning(_MESSAGES.c.msgid))
    new = set(inserted.scalars())
    taken = []
    for message in messages:  # a msgid twice in one page is still answered once
        if str(message["msgid"])[:64] in new:
            new.discard(str(message["msgid"])[:64])
            taken.append(message)
    return taken
