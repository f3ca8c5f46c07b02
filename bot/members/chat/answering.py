"""Answer a batch of newly taken-in 微信客服 messages, in order, and queue one job to send them.

The answers are worked out in the transaction that takes the messages in (kf_sync.py), under the
account's lock and the cursor's row lock: the customers' points-mall confirmations and send
windows are read and written there, each answer is stored in `kf_messages.reply`, and one
`kf.send` job carries the batch's answers to WeCom after the commit. A crash before the commit
re-reads the messages; after it, the send job (re)sends the stored answers with msgids derived
from the customers' msgids, which WeCom delivers once: answered once, never twice.

The everyday questions (balance, help, greeting) are answered from one read of every asker's
member row, lapsing points and conversation (snapshot.py); a customer who joins or uses the
points mall in the batch takes the general path (dialogue.py, ORM), message by message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs import JobContext, Priority, insert_jobs, job_row, tasks
from bot.members.chat import snapshot
from bot.members.chat.answers import join_hint, points_reply
from bot.members.chat.dialogue import MEMBERS_ONLY, answer_message, welcome_menu, welcome_reply
from bot.members.chat.intents import classify
from bot.members.chat.replies import Reply, help_menu
from bot.members.config import MembersConfig
from bot.members.models import KfMessage
from bot.storage import Database, utcnow
from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.chat")

SEND_JOB = "kf.send"
ANSWER_JOB = "kf.answer"  # before answers were worked out at intake: jobs still queued at an upgrade
KF_WINDOW = dt.timedelta(hours=48)
KF_MESSAGES_PER_WINDOW = 5
# WeCom will not take these however often we retry: the window closed, the code lapsed or was used.
FINAL_ERRCODES = frozenset({95001, 95002, 41050, 41051})
SENDS_AT_ONCE = 16
SEND_FALLBACK_SECONDS = 5.0  # the send job, when the dispatch sends the answers itself after the commit
# Answered from the batch's snapshot; any other intent sends its customer down the general path.
SNAPSHOT_INTENTS = frozenset({"points", "help", "unknown"})
_MESSAGES = KfMessage.__table__


def reply_msgid(source_msgid: str, prefix: str = "r") -> str:
    """Stable ≤32-char send id derived from the customer's message: a retried send is not re-delivered."""
    return prefix + "-" + hashlib.sha256(source_msgid.encode()).hexdigest()[:29]


def customer_of(message: dict) -> str:
    if message.get("msgtype") == "event":
        return (message.get("event") or {}).get("external_userid") or message.get("external_userid") or ""
    return message.get("external_userid") or ""


def _is_question(message: dict) -> bool:
    return message.get("origin") == 3 and message.get("msgtype") != "event"


def _intent(message: dict) -> str:
    content = (message.get("text") or {}) if message.get("msgtype") == "text" else {}
    return classify(content.get("content"), content.get("menu_id"))[0]


class Batch:
    """Everything the batch's answers read, read once; and the conversations they change."""

    def __init__(self, session: AsyncSession, db: Database, config: MembersConfig, open_kfid: str) -> None:
        self.session, self.db, self.config, self.open_kfid = session, db, config, open_kfid
        self.members: dict[str, snapshot.MemberSnapshot] = {}
        self.windows: dict[str, snapshot.Window] = {}
        self.general: set[str] = set()  # customers whose messages take the ORM path

    async def load(self, messages: list[dict]) -> None:
        questions = [m for m in messages if _is_question(m)]
        customers = sorted({customer_of(m) for m in messages})
        self.general = {customer_of(m) for m in questions if _intent(m) not in SNAPSHOT_INTENTS}
        self.members = await snapshot.members_of(self.session, customers, self.config.expiring_soon_days, utcnow())
        self.windows = await snapshot.windows_of(self.session, self.open_kfid,
                                                 sorted({customer_of(m) for m in questions}))
        self._open_windows(questions)

    def _open_windows(self, questions: list[dict]) -> None:
        """Our answers go out after all these were read, so they count against the window opened by
        each customer's latest message: at most 5 answers for a burst."""
        latest: dict[str, dt.datetime] = {}
        for message in questions:
            sent = dt.datetime.fromtimestamp(int(message.get("send_time") or 0), dt.UTC)
            who = customer_of(message)
            latest[who] = max(sent, latest.get(who, sent))
        for who, sent in latest.items():
            window = self.windows.get(who)
            if window is None:
                self.windows[who] = snapshot.Window(self.open_kfid, who, sent)
            elif sent >= window.last_customer_message_at:
                window.last_customer_message_at, window.sent_in_window = sent, 0

    async def answer(self, message: dict) -> tuple[str, dict]:
        """(intent, what to send: {} for nothing)."""
        if message.get("msgtype") == "event":
            return "event", await self._greeting(message)
        if message.get("origin") != 3:  # servicer (5) and system (4) messages are not questions
            return "ignored", {}
        who = customer_of(message)
        window = self.windows[who]
        if who in self.general:
            intent, reply = await answer_message(self.session, self.config, message, window)
        else:
            intent, reply = self._from_snapshot(message, window)
        if utcnow() - window.last_customer_message_at > KF_WINDOW or window.sent_in_window >= KF_MESSAGES_PER_WINDOW:
            log.info("not answering kf message %s: outside WeCom's 48 h / 5 message window", message["msgid"])
            return intent[:20], {}
        window.sent_in_window += 1
        return intent[:20], {"open_kfid": message["open_kfid"], "touser": message["external_userid"],
                             "msgid": reply_msgid(message["msgid"]), **reply.payload()}

    def _from_snapshot(self, message: dict, window: snapshot.Window) -> tuple[str, Reply]:
        intent = _intent(message)
        window.pending = None  # the customer moved on: a later 「确认」 must not redeem
        member = self.members.get(customer_of(message))
        if intent in MEMBERS_ONLY and member is None:
            return intent, join_hint(self.config)
        if intent == "points":
            return intent, points_reply(member.points_balance, member.soon, member.first_soon)
        if intent == "help":
            return intent, help_menu()
        return "unknown", help_menu("抱歉，我没太明白。您可以点击下面的选项：")

    async def _greeting(self, message: dict) -> dict:
        event = message.get("event") or {}
        if event.get("event_type") != "enter_session" or not event.get("welcome_code"):
            return {}
        who = event.get("external_userid") or ""
        if who in self.general:  # the batch may have made them a member: read it as it is now
            reply = await welcome_reply(self.session, self.config, who)
        else:
            member = self.members.get(who)
            reply = welcome_menu(self.config, None if member is None else member.points_balance)
        return {"code": event["welcome_code"], "msgid": reply_msgid(message["msgid"], "w"), **reply.payload()}


async def answer_messages(session: AsyncSession, db: Database, config: MembersConfig, open_kfid: str,
                          messages: list[dict]) -> list[dict]:
    """Answer each message (taken in, not answered yet), store the answers; returns those to send."""
    if not messages:
        return []
    batch = Batch(session, db, config, open_kfid)
    await batch.load(messages)
    stored, to_send = [], []
    for message in messages:
        intent, reply = await batch.answer(message)
        stored.append({"m_id": str(message["msgid"])[:64], "m_intent": intent, "m_reply": reply})
        if reply:
            to_send.append(reply)
    c = _MESSAGES.c
    await session.execute(
        _MESSAGES.update().where(c.msgid == bindparam("m_id"))
        .values(intent=bindparam("m_intent"), reply=bindparam("m_reply", type_=c.reply.type)), stored)
    await snapshot.save_windows(session, db, [w for w in batch.windows.values() if w.id is None or w.changed])
    return to_send


async def queue_sending(session: AsyncSession, answers: list[dict], wecom=None, after_commit=None) -> None:
    """One job sends the batch's answers after the commit (none when there is nothing to send).

    With `after_commit` (EventContext.after_commit: the inbox job runs it after the commit) the
    answers are sent right after the commit by the job that worked them out, and the send job only
    waits SEND_FALLBACK_SECONDS as the fallback (this process died, or the sending failed): no
    claim and no run of a job of its own. Sent twice in the worst case, with the same msgids:
    WeCom delivers each once."""
    if not answers:
        return
    key = f"{SEND_JOB}:{answers[0]['msgid']}"
    if after_commit is None:
        await insert_jobs(session, [job_row(SEND_JOB, {"answers": answers}, dedupe_key=key)])
        return
    fallback = await insert_jobs(session, [job_row(SEND_JOB, {"answers": answers}, dedupe_key=key,
                                                   delay=SEND_FALLBACK_SECONDS)], notify=False)
    after_commit(lambda: send_answers(wecom, answers), fallback[0] if fallback else None)


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


async def send_answers(wecom, answers: list[dict]) -> None:
    """Send all, a few at a time; a failure is raised once the others went out (a retry re-sends
    every answer with the same msgids: WeCom delivers each once). One customer's in order."""
    by_customer: dict[str, list[dict]] = {}
    for answer in answers:
        by_customer.setdefault(answer.get("touser") or answer["msgid"], []).append(answer)
    gate = asyncio.Semaphore(SENDS_AT_ONCE)

    async def send_in_order(batch: list[dict]) -> None:
        async with gate:
            for answer in batch:
                await send_answer(wecom, answer)

    failures = [r for r in await asyncio.gather(*(send_in_order(b) for b in by_customer.values()),
                                                return_exceptions=True) if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


@tasks(SEND_JOB, priority=Priority.REPLY, quick=True)
async def send_queued_answers(ctx: JobContext, payload: dict) -> None:
    await send_answers(ctx.services.wecom, payload["answers"])


@tasks(ANSWER_JOB, quick=True)
async def answer_customer(ctx: JobContext, payload: dict) -> None:
    """A job queued by the previous version: answer what is not answered yet, (re)send the rest."""
    services, who = ctx.services, payload["external_userid"]
    msgids = [str(m["msgid"])[:64] for m in payload["messages"]]
    async with services.kv.lock(f"customer:{who}", timeout=60, wait=60):
        async with services.db.session() as session, session.begin():
            stored = dict((await session.execute(
                select(_MESSAGES.c.msgid, _MESSAGES.c.reply).where(_MESSAGES.c.msgid.in_(msgids)))).all())
            answered = [stored[msgid] for msgid in msgids if stored.get(msgid)]
            answers = answered + await answer_messages(
                session, services.db, services.config(MembersConfig), payload["open_kfid"],
                [m for m in payload["messages"] if str(m["msgid"])[:64] in stored and stored[str(m["msgid"])[:64]] is None])
    await send_answers(services.wecom, answers)
