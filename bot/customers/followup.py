"""Jobs queued by a new binding: the welcome message (within WeCom's 20 s) and profile + tags.

The welcome job runs at priority 100, ahead of the inbox backlog; an expired or used code is
final (WeCom will not take it again), so it is logged, not retried. Its text (with the benefit
issued by the binding) was written into the payload, so the job reads nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.customers.binding import ENRICH_JOB, WELCOME_JOB
from bot.customers.models import Customer
from bot.customers.tags import corp_tag_ids, forget_tags
from bot.jobs import JobContext, tasks
from bot.stores.models import Channel
from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.customers.followup")

WELCOME_CODE_GONE = {41050, 41051}  # expired (20 s) or already used
INVALID_TAG_ID = 40068
NOT_A_CUSTOMER = {40096, 84061}  # unknown external_userid; no longer a friend of the guide


@tasks(WELCOME_JOB)
async def send_welcome(job: JobContext, payload: dict) -> None:
    try:
        await job.services.wecom.externalcontact.send_welcome_msg(
            payload["welcome_code"], text={"content": payload["text"]}
        )
    except WeComAPIError as exc:
        if exc.errcode not in WELCOME_CODE_GONE:
            raise
        log.warning("welcome to %s not sent: code gone (%s)", payload["external_userid"], exc.errcode)


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
