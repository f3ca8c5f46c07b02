"""POST /api/v1/guides/{userid}/handover: move a guide's customers to a colleague (bot/customers/handover.py)."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.customers.handover import rebind, takeover_for
from bot.customers.models import CustomerBinding
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


@api.route("POST", "/api/v1/guides/{userid}/handover", summary="Move a guide's customers to another guide",
           roles=[Role.HQ_ADMIN], body=HandoverIn, response=HandoverOut)
async def hand_over_customers(call: ApiCall) -> HandoverOut:
    body: HandoverIn = call.body
    services = call.services
    async with services.db.session() as session:
        leaving = await session.scalar(select(Guide).where(Guide.userid == call.path["userid"]))
        if leaving is None:
            raise ApiError(404, "unknown_guide", f"no guide {call.path['userid']!r}")
        takeover = await takeover_for(session, leaving, body.takeover_userid)
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
                await rebind(session, external_userid, leaving.userid, takeover, now)
                moved += 1
    return HandoverOut(handover_userid=leaving.userid, takeover_userid=takeover.userid,
                       mode="resigned" if resigned else "active", moved=moved, failed=failed)
