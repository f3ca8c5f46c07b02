"""Where a customer is bound to a guide: add events open bindings, delete events close them.

Attribution (会员归属) stays with the first guide while that friendship lasts; a customer who also
adds another guide gets a binding row for them but keeps their attributed guide. When the
attributed friendship ends, the customer is `unbound`; adding the same guide again restores it,
adding another guide gives that guide the attribution. Only HQ handovers move it otherwise.
A customer's `first_bound_at` is the start of their first binding, written with the same time
(the welcome's rule for a new customer, bot/customers/welcome.py `is_first_add`, relies on it).
Everything here runs inside the inbox transaction; WeCom calls happen in jobs: the welcome
(bot/customers/welcome.py, written at intake) and the enrichment (bot/customers/enrich.py).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import ColumnElement, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.catalog import catalog_for
from bot.customers.models import Customer, CustomerBinding
from bot.stores.contact_ways import STATE_MAX
from bot.stores.funnel import ATTRIBUTION_WINDOW, funnel_row
from bot.stores.models import FunnelEvent

log = logging.getLogger("bot.customers.binding")

DIRECT_CHANNEL = "direct"
# Ends that lose a friend (the funnel's net friends); handovers and transfers only move one.
LOSSES = ("customer_deleted", "guide_deleted")
# A binding from these sources is a friend the guide added (handovers do not use up the limit).
ADD_SOURCES = ("scan", "direct")
_CUSTOMERS, _BINDINGS = Customer.__table__, CustomerBinding.__table__


async def open_binding(session: AsyncSession, external_userid: str, userid: str) -> CustomerBinding | None:
    return await session.scalar(
        select(CustomerBinding).where(
            CustomerBinding.external_userid == external_userid,
            CustomerBinding.guide_userid == userid,
            CustomerBinding.ended_at.is_(None),
        ).order_by(CustomerBinding.id.desc()).limit(1)
    )


def guide_adds_since(userid: ColumnElement[str], since: dt.datetime) -> ColumnElement[int]:
    """SQL: the friends the guide (`userid`, e.g. the enclosing query's Guide.userid) added since
    `since`, by the index on (guide, start). The stores' guide picker asks for it by name, for the
    daily add limit (`GUIDE_ADDS_SINCE`, bot/stores/assign.py)."""
    return (select(func.count())
            .where(CustomerBinding.guide_userid == userid, CustomerBinding.started_at >= since,
                   CustomerBinding.source.in_(ADD_SOURCES))
            .correlate_except(CustomerBinding).scalar_subquery())


def attribute(customer: Customer, binding: CustomerBinding, now: dt.datetime) -> None:
    """Make `binding` the customer's current attribution."""
    customer.guide_userid, customer.store_code = binding.guide_userid, binding.store_code
    customer.channel_code, customer.status, customer.bound_at = binding.channel_code, "bound", now
    customer.first_bound_at = customer.first_bound_at or now  # the same time as the binding's start


async def bind_on_add(ctx, now: dt.datetime) -> int | None:
    """add_external_contact: decode the state and bind (or keep the open binding of this friendship).

    Plain statements on the inbox transaction's connection (one read, then two or three INSERTs):
    this runs for every add, and the ORM's unit of work was most of its cost. Returns the binding id.
    """
    session, event = ctx.session, ctx.event
    userid, external_userid = event.user_id, event.external_user_id
    if not userid or not external_userid:
        log.warning("add event without UserID/ExternalUserID; ignored")
        return None
    state = event.get("State") or ""
    # No state, or one we never issued: bind to the guide's own store as a direct add.
    channel_code, store_code, decoded = await channel_and_store(ctx.services, state, userid, session)
    if state and not decoded:
        log.warning("state %r does not decode; bound as direct", state)
    conn = await session.connection()
    # One prebuilt read (its cache key computed once): the customer, the open binding with this
    # guide and, for a decoded state, the aggregated code whose landing page offered this guide.
    known = (await conn.execute(_KNOWN, {
        "external_userid": external_userid, "userid": userid, "shown_channel": channel_code if decoded else None,
        "shown_since": now - ATTRIBUTION_WINDOW})).one()
    binding_id = known.open_binding_id  # set: a repeat (add_half then add): keep the open one, one add
    if binding_id is None:
        qrcode_code = known.shown_code
        binding_id = await conn.scalar(_INSERT_BINDING, {
            "external_userid": external_userid, "guide_userid": userid, "store_code": store_code,
            "channel_code": channel_code, "state": state[:30] or None, "qrcode_code": qrcode_code,
            "source": "scan" if decoded else "direct", "started_at": now})
        attribution = {"guide_userid": userid, "store_code": store_code, "channel_code": channel_code,
                       "status": "bound", "bound_at": now, "updated_at": now}
        if known.customer_id is None:
            await conn.execute(_INSERT_CUSTOMER, {
                "external_userid": external_userid, "name": "", "gender": 0, "tags": [], "first_bound_at": now,
                "created_at": now, **attribution})
        elif known.guide_userid is None or known.status != "bound":
            await conn.execute(update(_CUSTOMERS).where(_CUSTOMERS.c.id == known.customer_id).values(
                first_bound_at=func.coalesce(_CUSTOMERS.c.first_bound_at, now), **attribution))
        details = {"external_userid": external_userid, "undecodable_state": state if state and not decoded else None}
        await conn.execute(_INSERT_FUNNEL, {  # as funnel_row("add", ...) builds it, without the ORM object
            "step": "add", "qrcode_code": qrcode_code, "channel_code": channel_code, "store_code": store_code,
            "guide_userid": userid, "visitor": None, "at": now,
            "details": {key: value for key, value in details.items() if value is not None}})
    return binding_id


def _customer_and_open_binding():
    """One row: the customer's id, attribution and first binding time, their open binding with this
    guide (all NULL for a customer never seen), and the code that showed this guide for the channel
    (bot.stores.funnel.code_that_showed; NULL when :shown_channel is NULL)."""
    of_customer = _CUSTOMERS.c.external_userid == bindparam("external_userid")

    def column(name: str):
        return select(_CUSTOMERS.c[name]).where(of_customer).scalar_subquery().label(name)

    funnel = FunnelEvent.__table__
    return select(
        column("id").label("customer_id"), column("guide_userid"), column("status"), column("first_bound_at"),
        select(_BINDINGS.c.id).where(_BINDINGS.c.external_userid == bindparam("external_userid"),
                                     _BINDINGS.c.guide_userid == bindparam("userid"), _BINDINGS.c.ended_at.is_(None))
        .order_by(_BINDINGS.c.id.desc()).limit(1).scalar_subquery().label("open_binding_id"),
        select(funnel.c.qrcode_code).where(
            funnel.c.step.in_(("locate", "choose")), funnel.c.at >= bindparam("shown_since", type_=funnel.c.at.type),
            funnel.c.guide_userid == bindparam("userid"), funnel.c.channel_code == bindparam("shown_channel"),
        ).order_by(funnel.c.at.desc(), funnel.c.id.desc()).limit(1).scalar_subquery().label("shown_code"),
    )


# Built once: SQLAlchemy keeps a statement's cache key with it, so the hot path neither builds
# these nor walks them to find its compiled form.
_KNOWN = _customer_and_open_binding()
_INSERT_BINDING = insert(_BINDINGS).returning(_BINDINGS.c.id)
_INSERT_CUSTOMER = insert(_CUSTOMERS)
_INSERT_FUNNEL = insert(FunnelEvent.__table__)


async def channel_and_store(services, state: str, userid: str, session=None) -> tuple[str, str | None, bool]:
    """(channel, store, decoded): the contact way's, or the guide's own store as `direct`."""
    catalog = catalog_for(services)
    way = await catalog.contact_way(services, state, session) if state and len(state) <= STATE_MAX else None
    if way is not None:
        return way.channel_code, way.store_code, True
    guide = await catalog.guide(services, userid, session)
    return DIRECT_CHANNEL, guide and guide.store_code, False


async def end_binding(session: AsyncSession, external_userid: str, userid: str, reason: str,
                      now: dt.datetime) -> CustomerBinding | None:
    """The friendship ended (either side deleted, or a handover moved it): close the binding."""
    binding = await open_binding(session, external_userid, userid)
    if binding is None:
        return None
    binding.ended_at, binding.end_reason = now, reason[:40]
    customer = await session.scalar(select(Customer).where(Customer.external_userid == external_userid))
    if customer is not None and customer.guide_userid == userid and reason != "handover":
        customer.status = "unbound"
    if reason in LOSSES:
        session.add(funnel_row(
            "delete", qrcode_code=binding.qrcode_code, channel_code=binding.channel_code,
            store_code=binding.store_code, guide_userid=userid, at=now, reason=reason,
        ))
    return binding


def end_reason(change_type: str, source: str | None) -> str:
    if change_type == "del_follow_user":
        return "customer_deleted"
    return "transferred" if source == "DELETE_BY_TRANSFER" else "guide_deleted"
