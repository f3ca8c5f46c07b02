"""The enrichment of new bindings: the customer's profile, the channel's tags and the grant of the
new-member benefit the welcome named (bot/customers/welcome.py decides who gets it).

An add queues one enrich job per ENRICH_WINDOW of bindings (`queue_enrich`); the job sweeps every
binding not enriched yet, in batches: one batch/get_by_user for the profiles, a few mark_tag calls
at once, one transaction for the batch's grants and one to record it all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy import event as event_api

from bot.customers.catalog import catalog_for
from bot.customers.models import Customer, CustomerBinding
from bot.customers.tags import corp_tag_ids, forget_tags
from bot.customers.welcome import grant_first_add_benefits
from bot.jobs import JobContext, Retry, tasks
from bot.storage import utcnow
from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.customers.enrich")

ENRICH_JOB = "customers.enrich"
ENRICH_WINDOW_SECONDS = 1.0
ENRICH_SETTLE_SECONDS = 1.0  # after its window: the window's bindings have committed by then
INVALID_TAG_ID = 40068
NOT_A_CUSTOMER = {40096, 84061}  # unknown external_userid; no longer a friend of the guide
ENRICH_BATCH = 100  # batch/get_by_user: ≤100 members a call, ≤100 customers a page
ENRICH_MAX_PAGES = 20  # then one externalcontact/get per customer still missing
ENRICH_BATCHES_PER_RUN = 5
ENRICH_PARALLEL_TAG_CALLS = 8
ENRICH_SWEEP_KEY, ENRICH_SWEEP_LEASE_SECONDS = "customers:enrich:sweeping", 120


async def queue_enrich(ctx) -> None:
    """After an add's binding (in the inbox transaction): one enrich job for the bindings of each
    ENRICH_WINDOW seconds (batched WeCom reads), queued once per window and process."""
    window = int(time.time() // ENRICH_WINDOW_SECONDS)
    queued = _enrich_windows_queued(ctx.services)
    if window in queued:
        return
    await ctx.enqueue(
        ENRICH_JOB, {}, dedupe_key=f"enrich:{window}",
        run_at=(window + 1) * ENRICH_WINDOW_SECONDS + ENRICH_SETTLE_SECONDS,
    )
    # Remembered only once committed: a rolled-back binding must not stop the next one queueing.
    event_api.listen(ctx.session.sync_session, "after_commit", lambda _session: queued.append(window), once=True)


def _enrich_windows_queued(services) -> deque[int]:
    """The windows whose enrich job this Services committed (one per app, so tests stay apart)."""
    queued = getattr(services, "_enrich_windows_queued", None)
    if queued is None:
        queued = services._enrich_windows_queued = deque(maxlen=4)
    return queued


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
                       CustomerBinding.channel_code, CustomerBinding.source, CustomerBinding.started_at,
                       Customer.first_bound_at)
                .outerjoin(Customer, Customer.external_userid == CustomerBinding.external_userid)
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
    first_bound_at: dt.datetime | None = None  # the customer's: the welcome's rule for a first add reads it


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
    # The benefit the welcome named, on its rule (bot/customers/welcome.py); before the bindings are
    # marked enriched, so a failed grant is retried.
    await grant_first_add_benefits(services, [binding for binding in added if binding.started_at is not None])
    await _record(services.db, pending, profiles, tagged)


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
