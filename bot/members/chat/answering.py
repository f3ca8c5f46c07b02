"""Answer one customer's newly taken-in 微信客服 messages, in order, then send the answers.

The job works out every answer in one transaction under the customer's lock (their points-mall
confirmation and send window live there) and stores each in `kf_messages.reply`; after the commit
it sends them with msgids derived from the customer's msgids. A retry after a crash re-sends the
stored answers with the same msgids, which WeCom delivers once: answered once, never twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs import JobContext, tasks
from bot.members.chat.dialogue import answer_message, welcome_reply
from bot.members.chat.kf_sync import ANSWER_JOB
from bot.members.config import MembersConfig, members_config
from bot.members.models import KfConversation, KfMessage
from bot.storage import Database, utcnow
from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.chat")

KF_WINDOW = dt.timedelta(hours=48)
KF_MESSAGES_PER_WINDOW = 5
# WeCom will not take these however often we retry: the window closed, the code lapsed or was used.
FINAL_ERRCODES = frozenset({95001, 95002, 41050, 41051})


def reply_msgid(source_msgid: str, prefix: str = "r") -> str:
    """Stable ≤32-char send id derived from the customer's message: a retried send is not re-delivered."""
    return prefix + "-" + hashlib.sha256(source_msgid.encode()).hexdigest()[:29]


async def answer_messages(session: AsyncSession, db: Database, config: MembersConfig, open_kfid: str,
                          external_userid: str, messages: list[dict]) -> list[dict]:
    """Store an answer for each message not answered yet; returns every stored answer to send."""
    rows = {row.msgid: row for row in await session.scalars(
        select(KfMessage).where(KfMessage.msgid.in_([str(m["msgid"])[:64] for m in messages])))}
    questions = [m for m in messages if m.get("origin") == 3 and m.get("msgtype") != "event"]
    conversation = await _conversation(session, db, open_kfid, external_userid, questions) if questions else None
    to_send = []
    for message in messages:
        row = rows.get(str(message["msgid"])[:64])
        if row is None:
            continue
        if row.reply is None:
            row.intent, row.reply = await _answer(session, config, message, conversation)
        if row.reply:
            to_send.append(row.reply)
    return to_send


async def _answer(session, config, message: dict, conversation: KfConversation | None) -> tuple[str, dict]:
    if message.get("msgtype") == "event":
        event = message.get("event") or {}
        if event.get("event_type") != "enter_session" or not event.get("welcome_code"):
            return "event", {}
        reply = await welcome_reply(session, config, event.get("external_userid") or "")
        return "event", {"code": event["welcome_code"], "msgid": reply_msgid(message["msgid"], "w"), **reply.payload()}
    if message.get("origin") != 3:  # servicer (5) and system (4) messages are not questions
        return "ignored", {}
    intent, reply = await answer_message(session, config, message, conversation)
    if utcnow() - conversation.last_customer_message_at > KF_WINDOW or \
            conversation.sent_in_window >= KF_MESSAGES_PER_WINDOW:
        log.info("not answering kf message %s: outside WeCom's 48 h / 5 message window", message["msgid"])
        return intent[:20], {}
    conversation.sent_in_window += 1
    return intent[:20], {"open_kfid": message["open_kfid"], "touser": message["external_userid"],
                         "msgid": reply_msgid(message["msgid"]), **reply.payload()}


async def _conversation(session: AsyncSession, db: Database, open_kfid: str, external_userid: str,
                        questions: list[dict]) -> KfConversation:
    """The customer's window. Our answers go out after all these were read, so they count against the
    window opened by the latest of them: at most 5 answers for a burst."""
    latest = dt.datetime.fromtimestamp(max(int(m.get("send_time") or 0) for m in questions), dt.UTC)
    await session.execute(db.insert(KfConversation).values(
        open_kfid=open_kfid, external_userid=external_userid, last_customer_message_at=latest, sent_in_window=0)
        .on_conflict_do_nothing(index_elements=["open_kfid", "external_userid"]))
    conversation = await session.scalar(select(KfConversation).where(
        KfConversation.open_kfid == open_kfid, KfConversation.external_userid == external_userid)
        .execution_options(populate_existing=True))
    if latest >= conversation.last_customer_message_at:
        conversation.last_customer_message_at, conversation.sent_in_window = latest, 0
    return conversation


async def send_answer(wecom, answer: dict) -> None:
    fields = {key: value for key, value in answer.items() if key not in ("open_kfid", "touser", "msgid", "code")}
    try:
        if "code" in answer:
            await wecom.kf.send_msg_on_event(code=answer["code"], msgid=answer["msgid"], **fields)
        else:
            await wecom.kf.send_msg(touser=answer["touser"], open_kfid=answer["open_kfid"], msgid=answer["msgid"],
                                    **fields)
    except WeComAPIError as exc:
        if exc.errcode not in FINAL_ERRCODES:
            raise
        log.warning("kf answer %s not delivered: %s", answer["msgid"], exc)


@tasks(ANSWER_JOB)
async def answer_customer(ctx: JobContext, payload: dict) -> None:
    services, who = ctx.services, payload["external_userid"]
    # The customer's lock (as for their contact events): their messages never race each other.
    async with services.kv.lock(f"customer:{who}", timeout=60, wait=60):
        async with services.db.session() as session, session.begin():
            answers = await answer_messages(session, services.db, members_config(), payload["open_kfid"], who,
                                            payload["messages"])
    for answer in answers:
        await send_answer(services.wecom, answer)
