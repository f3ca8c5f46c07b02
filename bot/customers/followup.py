"""Jobs queued by a new binding: the welcome message (within WeCom's 20 s) and profile + tags.

The welcome job is written at intake, with the inbox row, and runs at priority 100: it never waits
for the event's turn in the dispatch queue, however long the queue. It composes its text when it
runs (a few indexed reads). An expired or used code is final (WeCom will not take it again), so
it is logged, not retried.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from bot.callback.inbox import at_intake
from bot.customers.binding import ENRICH_JOB, WELCOME_JOB, channel_and_store, welcome_text
from bot.customers.models import Customer, CustomerBinding
from bot.customers.tags import corp_tag_ids, forget_tags
from bot.jobs import JobContext, Priority, tasks
from bot.stores.models import Channel
from bot.wecom.client import WeComAPIError
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.customers.followup")

WELCOME_CODE_GONE = {41050, 41051}  # expired (20 s) or already used
INVALID_TAG_ID = 40068
NOT_A_CUSTOMER = {40096, 84061}  # unknown external_userid; no longer a friend of the guide


WELCOME_PRIORITY = Priority.URGENT  # ahead of everything: the code dies 20 s after the customer added the guide
WELCOME_CODE_SECONDS = 20
SAME_ADD_SECONDS = 10  # add_half then add of one friendship arrive this close together: greet once


@at_intake
def welcome_at_intake(event: InboundEvent) -> dict | None:
    """Written with the inbox row, so the welcome never waits for the dispatch queue."""
    code = event.get("WelcomeCode")
    if event.change_type not in ("add_external_contact", "add_half_external_contact") or not code:
        return None
    return {"kind": WELCOME_JOB, "dedupe_key": f"welcome:{code}"[:200], "priority": WELCOME_PRIORITY,
            "max_attempts": 3,
            "payload": {"welcome_code": code, "userid": event.user_id, "external_userid": event.external_user_id,
                        "state": event.get("State") or "", "create_time": event.create_time}}


def welcome_code_deadline(payload: dict) -> float:
    """WeCom takes a welcome code for 20 s after the add (the event's CreateTime)."""
    return payload["create_time"] + WELCOME_CODE_SECONDS


@tasks(WELCOME_JOB, priority=WELCOME_PRIORITY, max_attempts=3, timeout=15, deadline=welcome_code_deadline)
async def send_welcome(job: JobContext, payload: dict) -> None:
    services, external_userid = job.services, payload["external_userid"]
    if await _greeted_already(services.kv, payload):
        return
    async with services.db.session() as session:
        text = await compose_welcome(session, payload)
    try:
        await services.wecom.externalcontact.send_welcome_msg(payload["welcome_code"], text={"content": text})
    except WeComAPIError as exc:
        if exc.errcode not in WELCOME_CODE_GONE:
            raise
        log.warning("welcome to %s not sent: code gone (%s)", external_userid, exc.errcode)


async def _greeted_already(kv, payload: dict) -> bool:
    """True when another code of the same add was already used (add_half, then add); a retry of
    this very job, or a later re-add, goes on."""
    key = f"greeted:{payload['userid']}:{payload['external_userid']}"
    mine = f"{payload['welcome_code']}@{payload['create_time']}"
    if await kv.set_if_absent(key, mine, ttl=SAME_ADD_SECONDS * 6):
        return False
    other = await kv.get(key) or mine
    other_code, _, other_time = other.rpartition("@")
    if other_code == payload["welcome_code"]:
        return False
    if abs(payload["create_time"] - int(other_time or 0)) < SAME_ADD_SECONDS:
        return True
    await kv.set(key, mine, ttl=SAME_ADD_SECONDS * 6)
    return False


async def compose_welcome(session, payload: dict) -> str:
    """The channel's greeting, and for a customer never bound before, the new-member benefit."""
    channel_code, store_code, _ = await channel_and_store(session, payload["state"], payload["userid"])
    text = await welcome_text(session, channel_code, payload["userid"], store_code)
    added_at = dt.datetime.fromtimestamp(payload["create_time"], dt.UTC)
    bound_before = await session.scalar(
        select(CustomerBinding.id).where(CustomerBinding.external_userid == payload["external_userid"],
                                         CustomerBinding.started_at < added_at).limit(1)
    )
    benefit = None if bound_before else await _benefit_sentence(session, channel_code)
    return "\n".join(filter(None, [text, benefit]))


async def _benefit_sentence(session, channel_code: str) -> str | None:
    try:
        from bot.members.welcome import describe_welcome_benefit
    except ImportError:  # a build without points and coupons
        return None
    template_code = await session.scalar(select(Channel.benefit_template_code).where(Channel.code == channel_code))
    return await describe_welcome_benefit(session, template_code)


async def _apply_channel_tags(services, payload: dict, names: list[str]) -> list[str]:
    for attempt in (1, 2):
        ids = await corp_tag_ids(services, names)
        try:
            await services.wecom.externalcontact.mark_tag(
                payload["userid"], payload["external_userid"], add_tag=list(ids.values())
            )
            return list(ids)
        except WeComAPIError as exc:
            if exc.errcode == INVALID_TAG_ID and attempt == 1:
                await forget_tags(services, names)  # deleted in the console: look them up again
                continue
            if exc.errcode in NOT_A_CUSTOMER:
                log.info("not tagging %s: %s", payload["external_userid"], exc)
                return []
            raise
    return []


@tasks(ENRICH_JOB)
async def enrich_customer(job: JobContext, payload: dict) -> None:
    """Fetch the profile (externalcontact/get) and apply the channel's tags; record both."""
    services = job.services
    async with services.db.session() as session:
        channel = await session.scalar(select(Channel).where(Channel.code == payload["channel_code"]))
    names = list(channel.tag_names) if channel else []
    tagged = await _apply_channel_tags(services, payload, names) if names else []
    profile = {}
    try:
        profile = (await services.wecom.externalcontact.get(payload["external_userid"])).get("external_contact", {})
    except WeComAPIError as exc:
        if exc.errcode not in NOT_A_CUSTOMER:
            raise
    async with services.db.session() as session, session.begin():
        customer = await session.scalar(
            select(Customer).where(Customer.external_userid == payload["external_userid"])
        )
        if customer is None:
            return
        if profile:
            customer.name = (profile.get("name") or customer.name)[:100]
            customer.avatar = (profile.get("avatar") or None) and profile["avatar"][:500]
            customer.gender = int(profile.get("gender") or 0)
            customer.unionid = profile.get("unionid") or customer.unionid
        if tagged:
            customer.tags = list(dict.fromkeys([*(customer.tags or []), *tagged]))
