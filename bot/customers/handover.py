"""A guide leaves or changes role: their customers move to another guide through WeCom's transfer.

`transfer_customer` (guide still active) or `resigned/transfer_customer` (guide resigned), ≤100
customers per call. WeCom accepts or refuses each customer; accepted ones are re-bound at once
(history keeps the old binding, ended `handover`). The move can still fail later — the customer
refuses, or the takeover is full — and WeCom then sends `transfer_fail`: the customer goes back.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.binding import attribute, end_binding, open_binding
from bot.customers.models import Customer, CustomerBinding
from bot.errors import DomainError
from bot.stores.models import Guide

log = logging.getLogger("bot.customers.handover")


async def takeover_for(session: AsyncSession, leaving: Guide, wanted: str | None) -> Guide:
    if wanted:
        guide = await session.scalar(select(Guide).where(Guide.userid == wanted))
        if guide is None or guide.status != "active" or guide.userid == leaving.userid:
            raise DomainError(422, "invalid_takeover", f"{wanted!r} is not another active guide")
        return guide
    # The colleague with the fewest customers today takes over.
    load = (select(func.count()).where(Customer.guide_userid == Guide.userid, Customer.status == "bound")
            .scalar_subquery())
    guide = await session.scalar(
        select(Guide).where(Guide.store_code == leaving.store_code, Guide.status == "active",
                            Guide.userid != leaving.userid).order_by(load, Guide.id).limit(1)
    )
    if guide is None:
        raise DomainError(409, "no_takeover", f"store {leaving.store_code!r} has no other active guide")
    return guide


async def rebind(session: AsyncSession, external_userid: str, leaving: str, takeover: Guide,
                  now: dt.datetime) -> None:
    old = await end_binding(session, external_userid, leaving, "handover", now)
    new = CustomerBinding(
        external_userid=external_userid, guide_userid=takeover.userid, store_code=takeover.store_code,
        channel_code=old.channel_code if old else None, qrcode_code=old.qrcode_code if old else None,
        source="handover", started_at=now,
    )
    session.add(new)
    customer = await session.scalar(select(Customer).where(Customer.external_userid == external_userid))
    if customer is not None and customer.guide_userid == leaving:
        attribute(customer, new, now)


async def revert_failed_transfer(session: AsyncSession, external_userid: str | None, userid: str | None,
                                 reason: str, now: dt.datetime) -> bool:
    """transfer_fail: end the handover binding and give the customer back to the previous guide."""
    if not external_userid:
        return False
    moved = await session.scalar(
        select(CustomerBinding).where(CustomerBinding.external_userid == external_userid,
                                      CustomerBinding.source == "handover", CustomerBinding.ended_at.is_(None))
        .order_by(CustomerBinding.id.desc()).limit(1)
    )
    previous = await session.scalar(
        select(CustomerBinding).where(CustomerBinding.external_userid == external_userid,
                                      CustomerBinding.end_reason == "handover")
        .order_by(CustomerBinding.id.desc()).limit(1)
    )
    if moved is None or previous is None:
        log.warning("transfer_fail for %s (member %s) without a handover on record", external_userid, userid)
        return False
    await end_binding(session, external_userid, moved.guide_userid, f"transfer_fail:{reason}", now)
    if await open_binding(session, external_userid, previous.guide_userid) is None:
        back = CustomerBinding(
            external_userid=external_userid, guide_userid=previous.guide_userid, store_code=previous.store_code,
            channel_code=previous.channel_code, qrcode_code=previous.qrcode_code, state=previous.state,
            source="restored", started_at=now,
        )
        session.add(back)
        customer = await session.scalar(select(Customer).where(Customer.external_userid == external_userid))
        if customer is not None and customer.guide_userid == moved.guide_userid:
            attribute(customer, back, now)
    return True
