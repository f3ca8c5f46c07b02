"""From a scan to an offer: the nearest open store in range, a guide there, and their contact QR.

If nobody at the nearest store can take a customer (all off, on leave or at their daily limit, and
no backup), the next store in range is tried; then the code's fallback (default store, then an
online guide). Every locate and choice is written to the funnel with the decision taken.

The common path is one short transaction (guide rule, cached contact way, funnel row); WeCom is
called only, outside any transaction, when a guide's contact way is missing or due for a check.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select

from bot.api.errors import ApiError
from bot.lbs import InvalidCoordinates, to_gcj02
from bot.storage import utcnow
from bot.stores.assign import GuidePick, choose_guide, guide_if_available
from bot.stores.contact_ways import cached_qr_code, contact_way_for
from bot.stores.directory import StoreCard, directory_for
from bot.stores.funnel import funnel_row
from bot.stores.models import QrCode
from bot.wecom.client import WeComAPIError, WeComUnavailable

log = logging.getLogger("bot.stores.locate")

NEARBY_LIMIT = 6


@dataclass
class Decision:
    store_code: str | None
    distance_m: float | None
    pick: GuidePick | None
    decision: str


async def active_code(services, code: str) -> QrCode:
    async with services.db.session() as session:
        qrcode = await session.scalar(select(QrCode).where(QrCode.code == code))
    if qrcode is None:
        raise ApiError(404, "unknown_code", f"no QR code {code!r}")
    if qrcode.status != "active":
        raise ApiError(410, "code_disabled", f"QR code {code!r} is disabled")
    return qrcode


def _store_json(card: StoreCard, distance_m: float | None) -> dict:
    return {"code": card.code, "name": card.name, "city": card.city, "address": card.address,
            "distance_m": None if distance_m is None else round(distance_m)}


async def _fallback(session, kv, qrcode: QrCode, now: dt.datetime, otherwise: str) -> Decision:
    store_code = qrcode.fallback.get("store_code")
    if store_code:
        pick = await choose_guide(session, kv, store_code, qrcode.guide_rule, now)
        if pick is not None:
            return Decision(store_code, None, pick, "fallback_store")
    userid = qrcode.fallback.get("guide_userid")
    if userid:
        guide = await guide_if_available(session, userid, now)
        if guide is not None:
            return Decision(guide.store_code, None, GuidePick(guide, "fallback"), "fallback_guide")
    return Decision(None, None, None, otherwise)


async def _resolve(services, qrcode: QrCode, step: str, decide: Callable[..., Awaitable[Decision]],
                   nearby: list[dict], open_now: bool | None, visitor: str | None, now: dt.datetime,
                   **details) -> dict:
    """Decide, find the guide's contact way, record the funnel row; answer the offer."""
    def funnel(d: Decision):
        return funnel_row(step, qrcode_code=qrcode.code, channel_code=qrcode.channel_code, at=now,
                          store_code=d.store_code, guide_userid=d.pick and d.pick.guide.userid, visitor=visitor,
                          decision=d.decision, distance_m=d.distance_m and round(d.distance_m), **details)

    async with services.db.session() as session, session.begin():
        d = await decide(session)
        qr_code = d.pick and await cached_qr_code(services.kv, d.pick.guide.userid, qrcode.channel_code)
        if d.pick is None or qr_code:
            session.add(funnel(d))
    if d.pick is not None and not qr_code:
        try:
            way = await contact_way_for(services, d.pick.guide.userid, d.pick.guide.store_code, qrcode.channel_code)
        except (WeComAPIError, WeComUnavailable) as exc:
            log.error("contact way for %s failed: %s", d.pick.guide.userid, exc)
            raise ApiError(503, "wecom_unavailable", "暂时无法获取导购二维码，请稍后再试") from None
        qr_code = way.qr_code
        async with services.db.session() as session, session.begin():
            session.add(funnel(d))
    card = directory_for(services).cards.get(d.store_code or "")
    return {
        "decision": d.decision,
        "open_now": bool(card and card.open_at(now)) if open_now is None else open_now,
        "store": _store_json(card, d.distance_m) if card else None,
        "guide": d.pick and {"userid": d.pick.guide.userid, "name": d.pick.guide.name,
                             "assigned_by": d.pick.reason},
        "qr_code": qr_code or None,
        "nearby": [s for s in nearby if s["code"] != d.store_code],
    }


async def locate(services, qrcode: QrCode, lat, lng, coord_system: str, visitor: str | None,
                 now: dt.datetime | None = None) -> dict:
    """The offer for a customer at (lat, lng) in `coord_system`; ApiError 400 on bad coordinates."""
    now = now or utcnow()
    try:
        lat, lng = to_gcj02(lat, lng, coord_system)
    except (InvalidCoordinates, ValueError) as exc:
        raise ApiError(400, "invalid_coordinates", str(exc)) from None
    directory = directory_for(services)
    await directory.refresh(services)
    stores, open_now = directory.nearest(lat, lng, qrcode.radius_m, now, limit=NEARBY_LIMIT)

    async def decide(session) -> Decision:
        for position, (card, distance) in enumerate(stores):
            pick = await choose_guide(session, services.kv, card.code, qrcode.guide_rule, now)
            if pick is not None:
                return Decision(card.code, distance, pick, "nearest" if position == 0 else "next_nearest")
        return await _fallback(session, services.kv, qrcode, now, "no_guide" if stores else "out_of_range")

    nearby = [_store_json(card, distance) for card, distance in stores]
    return await _resolve(services, qrcode, "locate", decide, nearby, open_now, visitor, now,
                          lat=round(lat, 3), lng=round(lng, 3))


async def choose(services, qrcode: QrCode, store_code: str | None, visitor: str | None,
                 now: dt.datetime | None = None) -> dict:
    """The customer picked a store (from the nearby list or the city picker), or asked for the fallback."""
    now = now or utcnow()
    directory = directory_for(services)
    await directory.refresh(services)
    if store_code is not None:
        card = directory.cards.get(store_code)
        if card is None or card.status != "open":
            raise ApiError(404, "unknown_store", f"no open store {store_code!r}")

    async def decide(session) -> Decision:
        if store_code is None:
            return await _fallback(session, services.kv, qrcode, now, "no_guide")
        pick = await choose_guide(session, services.kv, store_code, qrcode.guide_rule, now)
        return Decision(store_code, None, pick, "chosen" if pick else "no_guide")

    return await _resolve(services, qrcode, "choose", decide, [], None, visitor, now)
