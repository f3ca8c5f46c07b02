"""The welcome of a customer who adds a guide, from the intake to the new-member benefit.

- At intake (`welcome_at_intake`, declared on the contact router in handlers/contact.py) the welcome
  job is written with the inbox row. It runs at URGENT priority, so it never waits for the event's
  turn in the dispatch queue, however long the queue: WeCom takes a welcome code for 20 s only.
- The job (`send_welcome`) greets once per add (add_half then add of one friendship bring two
  codes), composes the text when it runs (channels, guides, stores from the per-process catalog)
  and sends it. A code older than 20 s is not sent (wecom_welcome_codes_expired_total); an expired
  or used code is final, so it is logged, not retried.
- "New customer" is one rule, `is_first_add`: the welcome names the new-member benefit on it (one
  read, `_first_add_now`), and the enrich sweep (bot/customers/enrich.py) grants the benefit on it
  (`grant_first_add_benefits`), whether or not the welcome could be sent. So the benefit named is
  the benefit granted. The members feature only words and issues it (bot/customers/benefits.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy import bindparam, select

from bot.customers.benefits import GRANT_NEW_MEMBER_BENEFITS, NEW_MEMBER_SENTENCE, provided
from bot.customers.binding import channel_and_store
from bot.customers.catalog import catalog_for
from bot.customers.models import Customer, CustomerBinding
from bot.jobs import JobContext, Priority, job_row, tasks
from bot.metrics import REGISTRY
from bot.wecom.client import WeComAPIError
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.customers.welcome")

WELCOME_JOB = "customers.welcome"
WELCOME_PRIORITY = Priority.URGENT  # ahead of everything: the code dies 20 s after the customer added the guide
WELCOME_CODE_SECONDS = 20  # WeCom takes a welcome code for 20 s after the add (the event's CreateTime)
WELCOME_CODE_GONE = {41050, 41051}  # expired (20 s) or already used
SAME_ADD_SECONDS = 10  # add_half then add of one friendship arrive this close together: greet once
DEFAULT_WELCOME = "您好，我是{guide}，{store}的专属导购。有任何问题随时找我～"
WELCOMES_EXPIRED = Counter("wecom_welcome_codes_expired_total",
                           "Welcome codes past WeCom's 20 s before their welcome could be sent", registry=REGISTRY)
_CUSTOMERS, _BINDINGS = Customer.__table__, CustomerBinding.__table__


def is_first_add(first_bound_at: dt.datetime | None, bound_at: dt.datetime | None) -> bool:
    """The one rule for "new customer": this add is the customer's first when they were never bound,
    or when their first binding is this add's binding (started at `bound_at`; None while the add is
    not bound yet, when only a customer never bound is new).

    add_half then add of one friendship keep one binding: one add. A re-add after a deletion, or an
    add of a customer bound to another guide before, starts after the first binding: not first.
    (bind_on_add writes a customer's first binding and their first_bound_at with the same time.)
    """
    return first_bound_at is None or (bound_at is not None and first_bound_at >= bound_at)


# At intake


def welcome_at_intake(event: InboundEvent) -> dict | None:
    """Written with the inbox row (handlers/contact.py declares it on its router), so the welcome
    never waits for the dispatch queue."""
    code = event.get("WelcomeCode")
    if event.change_type not in ("add_external_contact", "add_half_external_contact") or not code:
        return None
    return job_row(WELCOME_JOB, {"welcome_code": code, "userid": event.user_id, "external_userid": event.external_user_id,
                                 "state": event.get("State") or "", "create_time": event.create_time},
                   dedupe_key=f"welcome:{code}")


def welcome_code_deadline(payload: dict) -> float:
    """WeCom takes a welcome code for 20 s after the add (the event's CreateTime)."""
    return payload["create_time"] + WELCOME_CODE_SECONDS


def _count_expired_welcome(payload: dict) -> None:
    WELCOMES_EXPIRED.inc()


# The welcome job


@tasks(WELCOME_JOB, priority=WELCOME_PRIORITY, max_attempts=3, timeout=15, deadline=welcome_code_deadline,
       on_expired=_count_expired_welcome, quick=True)
async def send_welcome(job: JobContext, payload: dict) -> None:
    services, external_userid = job.services, payload["external_userid"]
    if await _greeted_already(services.kv, payload):
        return
    channel_code, store_code, _ = await channel_and_store(services, payload["state"], payload["userid"])
    age = time.time() - payload["create_time"]
    if age > WELCOME_CODE_SECONDS:  # WeCom would answer 41050: do not spend a call of the quota on it
        WELCOMES_EXPIRED.inc()
        log.warning("welcome to %s not sent: its code is %.0f s old", external_userid, age)
        return
    text = "\n".join(filter(None, [await welcome_text(services, channel_code, payload["userid"], store_code),
                                   await _benefit_sentence(services, payload, channel_code)]))
    try:
        await services.wecom.externalcontact.send_welcome_msg(payload["welcome_code"], text={"content": text})
    except WeComAPIError as exc:
        if exc.errcode not in WELCOME_CODE_GONE:
            raise
        log.warning("welcome to %s not sent: code gone (%s)", external_userid, exc.errcode)


async def welcome_text(services, channel_code: str, userid: str, store_code: str | None, session=None) -> str:
    """The channel's welcome text (or the default) with {guide} and {store} filled in."""
    catalog = catalog_for(services)
    channel = await catalog.channel(services, channel_code, session)
    guide = await catalog.guide(services, userid, session)
    store = store_code and await catalog.store_name(services, store_code, session)
    text = (channel and channel.welcome_text) or DEFAULT_WELCOME
    return text.replace("{guide}", (guide and guide.name) or "您的导购").replace("{store}", store or "门店").strip()


async def _benefit_sentence(services, payload: dict, channel_code: str) -> str | None:
    """The channel's new-member benefit, named for the customer's first add only (is_first_add)."""
    if (new_member_sentence := provided(services, NEW_MEMBER_SENTENCE)) is None:
        return None  # a build without points and coupons
    if not await _first_add_now(services, payload["external_userid"], payload["userid"]):
        return None
    channel = await catalog_for(services).channel(services, channel_code)
    return await new_member_sentence(services, channel and channel.benefit_template_code)


async def _first_add_now(services, external_userid: str, userid: str) -> bool:
    """is_first_add, as far as the bindings committed now tell: this add's binding is the open one
    with this guide (add_half then add share it), or not there yet."""
    # One prebuilt Core read (no ORM session, no statement built per welcome); no SQLite write lock.
    async with services.db.reading() as conn:
        row = (await conn.execute(_FIRST_ADD, {"external_userid": external_userid, "userid": userid})).one()
    return is_first_add(row.first_bound_at, row.bound_at)


# Built once: SQLAlchemy keeps a statement's cache key with it (see binding._KNOWN).
_FIRST_ADD = select(
    select(_CUSTOMERS.c.first_bound_at).where(_CUSTOMERS.c.external_userid == bindparam("external_userid"))
    .scalar_subquery().label("first_bound_at"),
    select(_BINDINGS.c.started_at).where(_BINDINGS.c.external_userid == bindparam("external_userid"),
                                         _BINDINGS.c.guide_userid == bindparam("userid"), _BINDINGS.c.ended_at.is_(None))
    .order_by(_BINDINGS.c.id.desc()).limit(1).scalar_subquery().label("bound_at"),
)


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


# The benefit the welcome named, granted by the enrich sweep


class AddedBinding(Protocol):
    """What the grant reads of a binding an add opened (bot.customers.enrich's pending bindings)."""

    external_userid: str
    channel_code: str | None
    started_at: dt.datetime
    first_bound_at: dt.datetime | None  # the customer's


async def grant_first_add_benefits(services, bindings: Iterable[AddedBinding]) -> None:
    """The new-member benefit of the bindings that are their customer's first add (is_first_add, as
    the welcome named it): one transaction for the batch. The enrich sweep calls it before marking
    the bindings enriched, so a failure is retried."""
    if (grant_new_member_benefits := provided(services, GRANT_NEW_MEMBER_BENEFITS)) is None:
        return  # a build without points and coupons
    catalog, grants = catalog_for(services), []
    for binding in bindings:
        if is_first_add(binding.first_bound_at, binding.started_at):
            channel = binding.channel_code and await catalog.channel(services, binding.channel_code)
            grants.append((binding.external_userid, channel.benefit_template_code if channel else None))
    if grants:
        await grant_new_member_benefits(services, grants)
