"""A guide leaves or changes role: their customers move to another guide through WeCom's transfer.

`transfer_customer` (guide still active) or `resigned/transfer_customer` (guide resigned), ≤100
customers per call. WeCom accepts or refuses each customer; accepted ones are re-bound at once
(history keeps the old binding, ended `handover`). The move can still fail later — the customer
refuses, or the takeover is full — and WeCom then sends `transfer_fail`: the customer goes back.
"""

from __future__ import annotations

import datetime as dt
import logging

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.customers.binding import attribute, end_binding, open_binding
from bot.customers.models import Customer, CustomerBinding
from bot.storage import utcnow
from bot.stores.models import Guide
from bot.wecom.client import WeComAPIError, WeComUnavailable

log = logging.getLogger("bot.customers.handover")

BATCH = 100  # WeCom's limit per transfer call


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    takeover_userid: str | None = Field(None, description="default: the least-loaded active guide of the store")
    external_userids: list[str] | None = Field(None, max_length=10_000, description="default: all their customers")
    transfer_success_msg: str | None = Field(None, max_length=200)


class HandoverFailure(BaseModel):
    external_userid: str
    errcode: int


class HandoverOut(BaseModel):
    handover_userid: str
    takeover_userid: str
    mode: str  # active | resigned
    moved: int
    failed: list[HandoverFailure]


async def _takeover(session: AsyncSession, leaving: Guide, wanted: str | None) -> Guide:
    if wanted:
        guide = await session.scalar(select(Guide).where(Guide.userid == wanted))
        if guide is None or guide.status != "active" or guide.userid == leaving.userid:
            raise ApiError(422, "invalid_takeover", f"{wanted!r} is not another active guide")
        return guide
    # The colleague with the fewest customers today takes over.
    load = (select(func.count()).where(Customer.guide_userid == Guide.userid, Customer.status == "bound")
            .scalar_subquery())
    guide = await session.scalar(
        select(Guide).where(Guide.store_code == leaving.store_code, Guide.status == "active",
                            Guide.userid != leaving.userid).order_by(load, Guide.id).limit(1)
    )
    if guide is None:
        raise ApiError(409, "no_takeover", f"store {leaving.store_code!r} has no other active guide")
    return guide


async def _rebind(session: AsyncSession, external_userid: str, leaving: str, takeover: Guide,
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


@api.route("POST", "/api/v1/guides/{userid}/handover", summary="Move a guide's customers to another guide",
           roles=[Role.HQ_ADMIN], body=HandoverIn, response=HandoverOut)
async def hand_over_customers(call: ApiCall) -> HandoverOut:
    body: HandoverIn = call.body
    services = call.services
    async with services.db.session() as session:
        leaving = await session.scalar(select(Guide).where(Guide.userid == call.path["userid"]))
        if leaving is None:
            raise ApiError(404, "unknown_guide", f"no guide {call.path['userid']!r}")
        takeover = await _takeover(session, leaving, body.takeover_userid)
        customers = body.external_userids or (await session.scalars(
            select(CustomerBinding.external_userid).where(
                CustomerBinding.guide_userid == leaving.userid, CustomerBinding.ended_at.is_(None))
        )).all()
    resigned = leaving.status == "resigned"
    api_group = services.wecom.externalcontact
    moved, failed = 0, []
    for start in range(0, len(customers), BATCH):
        batch = list(customers[start:start + BATCH])
        try:
            if resigned:
                answer = await api_group.resigned_transfer_customer(leaving.userid, takeover.userid, batch)
            else:
                answer = await api_group.transfer_customer(
                    leaving.userid, takeover.userid, batch, transfer_success_msg=body.transfer_success_msg)
        except (WeComAPIError, WeComUnavailable) as exc:
            log.error("handover batch failed: %s", exc)
            code = getattr(exc, "errcode", -1)
            failed.extend(HandoverFailure(external_userid=e, errcode=code) for e in batch)
            continue
        results = {item["external_userid"]: int(item.get("errcode", 0)) for item in answer.get("customer", [])}
        now = utcnow()
        async with services.db.session() as session, session.begin():
            for external_userid in batch:
                errcode = results.get(external_userid, -1)
                if errcode:
                    failed.append(HandoverFailure(external_userid=external_userid, errcode=errcode))
                    continue
                await _rebind(session, external_userid, leaving.userid, takeover, now)
                moved += 1
    return HandoverOut(handover_userid=leaving.userid, takeover_userid=takeover.userid,
                       mode="resigned" if resigned else "active", moved=moved, failed=failed)


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
