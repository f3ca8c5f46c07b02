"""Jobs queued by a new binding: the welcome message (within WeCom's 20 s) and profile + tags.

The welcome job is written at intake, with the inbox row, and runs at priority 100: it never waits
for the event's turn in the dispatch queue, however long the queue. It composes its text when it
runs (channels, guides, stores from the per-process catalog; one read for "bound before?"), sends,
then grants the new-member benefit it named. A code older than WeCom's 20 s is not sent (counted in
wecom_welcome_codes_expired_total); an expired or used code is final, so it is logged, not retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import bindparam, select, update

from bot.customers.benefits import GRANT_NEW_MEMBER_BENEFITS, NEW_MEMBER_SENTENCE, provided
from bot.customers.binding import (
    ENRICH_JOB,
    WELCOME_JOB,
    channel_and_store,
    welcome_text,
)
from bot.customers.catalog import catalog_for
from bot.customers.models import Customer, CustomerBinding
from bot.customers.tags import corp_tag_ids, forget_tags
from bot.jobs import JobContext, Priority, Retry, job_row, tasks
from bot.metrics import REGISTRY
from bot.storage import utcnow
from bot.wecom.client import WeComAPIError
from bot.wecom.events import InboundEvent

log = logging.getLogger("bot.customers.followup")

WELCOME_CODE_GONE = {41050, 41051}  # expired (20 s) or already used
INVALID_TAG_ID = 40068
NOT_A_CUSTOMER = {40096, 84061}  # unknown external_userid; no longer a friend of the guide


ENRICH_BATCH = 100  # batch/get_by_user: ≤100 members a call, ≤100 customers a page
ENRICH_MAX_PAGES = 20  # then one externalcontact/get per customer still missing
ENRICH_BATCHES_PER_RUN = 5
ENRICH_PARALLEL_TAG_CALLS = 8
ENRICH_SWEEP_KEY, ENRICH_SWEEP_LEASE_SECONDS = "customers:enrich:sweeping", 120
WELCOME_CODE_SECONDS = 20  # WeCom takes a welcome code for 20 s after the add (the event's CreateTime)
WELCOMES_EXPIRED = Counter("wecom_welcome_codes_expired_total",
                           "Welcome codes past WeCom's 20 s before their welcome could be sent", registry=REGISTRY)
WELCOME_PRIORITY = Priority.URGENT  # ahead of everything: the code dies 20 s after the customer added the guide
SAME_ADD_SECONDS = 10  # add_half then add of one friendship arrive this close together: greet once


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


async def _benefit_sentence(services, payload: dict, channel_code: str) -> str | None:
    """What a customer never bound before gets (granted with the enrichment of their binding)."""
    if (new_member_sentence := provided(services, NEW_MEMBER_SENTENCE)) is None:
        return None  # a build without points and coupons
    channel = await catalog_for(services).channel(services, channel_code)
    added_at = dt.datetime.fromtimestamp(payload["create_time"], dt.UTC)
    return await new_member_sentence(services, payload["external_userid"],
                                     channel and channel.benefit_template_code, added_at)


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


@tasks(ENRICH_JOB, quick=True)
async def enrich_customers(job: JobContext, payload: dict) -> None:
    """Profiles (externalcontact/batch/get_by_user) and channel tags of every binding not enriched yet.

    One job per second of bindings; whatever it finds pending it does, so a binding that committed
    after its window's job ran is done by the next one. One sweep at a time (two would do it twice);
    a job that finds one running ends at once: that sweep looks for pending bindings again after
    letting go, so no worker slot waits on a lock and no binding is left behind.
    """
    services = job.services
    if payload.get("external_userid"):  # queued before batching: that one binding's customer
        await _enrich(services, [_Pending(0, payload["userid"], payload["external_userid"],
                                          payload["channel_code"], "scan")])
        return
    while await services.kv.set_if_absent(ENRICH_SWEEP_KEY, str(job.job_id), ttl=ENRICH_SWEEP_LEASE_SECONDS):
        try:
            more = await _sweep(services)
        finally:
            await services.kv.delete(ENRICH_SWEEP_KEY)
        if more:
            raise Retry(0, "more bindings to enrich")  # let other jobs in between batches
        # A job turned away while this one held the sweep counted on this look.
        async with services.db.session() as session:
            if await session.scalar(select(CustomerBinding.id).where(CustomerBinding.enriched_at.is_(None))
                                    .limit(1)) is None:
                return
    # Another job is sweeping: it looks again after it lets go, so it sees this window's bindings.


async def _sweep(services) -> bool:
    """Up to ENRICH_BATCHES_PER_RUN batches; True when it stopped with more pending."""
    for _ in range(ENRICH_BATCHES_PER_RUN):
        async with services.db.session() as session:
            pending = [_Pending(*row) for row in await session.execute(
                select(CustomerBinding.id, CustomerBinding.guide_userid, CustomerBinding.external_userid,
                       CustomerBinding.channel_code, CustomerBinding.source, CustomerBinding.started_at)
                .where(CustomerBinding.enriched_at.is_(None)).order_by(CustomerBinding.id).limit(ENRICH_BATCH))]
        if pending:
            await _enrich(services, pending)
        if len(pending) < ENRICH_BATCH:
            return False
    return True


@dataclass(frozen=True, slots=True)
class _Pending:
    binding_id: int
    userid: str
    external_userid: str
    channel_code: str | None
    source: str
    started_at: dt.datetime | None = None


async def _enrich(services, pending: list[_Pending]) -> None:
    # Handovers and restores move a customer who was enriched when they first came.
    added = [p for p in pending if p.source in ("scan", "direct")]
    profiles = await _profiles(services, added) if added else {}
    tagged: dict[str, list[str]] = {}
    catalog, calls = catalog_for(services), asyncio.Semaphore(ENRICH_PARALLEL_TAG_CALLS)

    async def tag(binding: _Pending) -> None:  # mark_tag has no batch form: one call each, a few at once
        channel = binding.channel_code and await catalog.channel(services, binding.channel_code)
        names = list(channel.tag_names) if channel else []
        if names:
            payload = {"userid": binding.userid, "external_userid": binding.external_userid}
            async with calls:
                done = await _apply_channel_tags(services, payload, names)
            tagged.setdefault(binding.external_userid, []).extend(done)

    await asyncio.gather(*(tag(binding) for binding in added))
    await _grant_benefits(services, [binding for binding in added if binding.started_at is not None])
    await _record(services.db, pending, profiles, tagged)


async def _grant_benefits(services, added: list[_Pending]) -> None:
    """The new-member benefit the welcome named, for the customers whose first binding this is:
    one transaction for the batch (before the bindings are marked, so a failure is retried)."""
    if (grant_new_member_benefits := provided(services, GRANT_NEW_MEMBER_BENEFITS)) is None:
        return  # a build without points and coupons
    catalog, grants = catalog_for(services), []
    for binding in added:
        channel = binding.channel_code and await catalog.channel(services, binding.channel_code)
        grants.append((binding.external_userid, channel.benefit_template_code if channel else None,
                       binding.started_at))
    await grant_new_member_benefits(services, grants)


async def _profiles(services, pending: list[_Pending]) -> dict[str, dict]:
    """external_userid → profile: pages of the guides' customers, then one by one for the rest."""
    wanted, found = {p.external_userid for p in pending}, {}
    guides, cursor = sorted({p.userid for p in pending}), None
    try:
        for _ in range(ENRICH_MAX_PAGES):
            page = await services.wecom.externalcontact.batch_get_by_user(guides, cursor=cursor, limit=ENRICH_BATCH)
            for item in page.get("external_contact_list") or []:
                contact = item.get("external_contact") or {}
                if contact.get("external_userid") in wanted:
                    found[contact["external_userid"]] = contact
            cursor = page.get("next_cursor")
            if not cursor or len(found) == len(wanted):
                break
    except WeComAPIError as exc:  # e.g. a guide who left: ask for each customer instead
        log.info("batch/get_by_user failed (%s); fetching profiles one by one", exc)
    for external_userid in sorted(wanted - found.keys()):
        try:
            found[external_userid] = (await services.wecom.externalcontact.get(external_userid)).get(
                "external_contact", {})
        except WeComAPIError as exc:
            if exc.errcode not in NOT_A_CUSTOMER:
                raise
    return found


async def _record(db, pending: list[_Pending], profiles: dict[str, dict], tagged: dict[str, list[str]]) -> None:
    """Profiles and tags onto the customers, and the bindings marked enriched: one transaction."""
    changed = set(profiles) | set(tagged)
    async with db.session() as session, session.begin():
        conn = await session.connection()
        rows = (await conn.execute(select(Customer.id, Customer.external_userid, Customer.name, Customer.unionid,
                                          Customer.avatar, Customer.gender, Customer.tags)
                                   .where(Customer.external_userid.in_(changed)))).all() if changed else []
        updates = []
        for row in rows:
            profile, tags = profiles.get(row.external_userid) or {}, tagged.get(row.external_userid)
            values = {"id": row.id, "name": row.name, "avatar": row.avatar, "gender": row.gender,
                      "unionid": row.unionid, "tags": list(row.tags or [])}
            if profile:
                values["name"] = (profile.get("name") or row.name)[:100]
                values["avatar"] = (profile.get("avatar") or None) and profile["avatar"][:500]
                values["gender"] = int(profile.get("gender") or 0)
                values["unionid"] = profile.get("unionid") or row.unionid
            if tags:
                values["tags"] = list(dict.fromkeys([*values["tags"], *tags]))
            updates.append(values)
        table = Customer.__table__
        if updates:
            await conn.execute(
                update(table).where(table.c.id == bindparam("row_id")).values(
                    {name: bindparam(f"new_{name}") for name in ("name", "avatar", "gender", "unionid", "tags")}
                    | {"updated_at": utcnow()}),
                [{"row_id": values.pop("id"), **{f"new_{name}": value for name, value in values.items()}}
                 for values in updates])
        ids = [p.binding_id for p in pending if p.binding_id]
        if ids:
            await conn.execute(update(CustomerBinding.__table__).where(CustomerBinding.__table__.c.id.in_(ids))
                               .values(enriched_at=utcnow()))
