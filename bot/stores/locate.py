"""From a scan to an offer: the nearest open store in range, a guide there, and their contact QR.

If nobody at the nearest store can take a customer (all off, on leave or at their daily limit, and
no backup), the next store in range is tried; then the code's fallback (default store, then an
online guide). A guide whose contact way WeCom refuses (an invalid account) is passed over the same
way, so one broken account never strands a customer. Every locate and choice is written to the
funnel with the decision taken (within the visitor's allowance, see funnel.py).

The common path is one short transaction (guide rule, cached contact way, funnel row); WeCom is
called only, outside any transaction, when a guide's contact way is missing or due for a check.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.errors import DomainError
from bot.lbs import InvalidCoordinates, to_gcj02
from bot.storage import utcnow
from bot.stores.assign import GuideAdds, GuidePick, choose_guide, guide_adds, guide_if_available
from bot.stores.contact_ways import (
    MEMBER_UNKNOWN_ERRCODES,
    cached_qr_code,
    contact_way_for,
    is_unreachable,
    mark_unreachable,
)
from bot.stores.directory import StoreCard, directory_for
from bot.stores.funnel import funnel_row
from bot.stores.hours import corp_timezone
from bot.stores.models import QrCode
from bot.wecom.client import RateLimited, WeComAPIError, WeComUnavailable

log = logging.getLogger("bot.stores.locate")

NEARBY_LIMIT = 6
# Guides refused by WeCom that one request passes over before it gives up (bounds its WeCom calls).
MAX_REFUSED_GUIDES = 5
NO_GUIDE_REACHABLE = "暂时无法获取导购二维码，请换一家门店或联系在线导购"


@dataclass
class Decision:
    store_code: str | None
    distance_m: float | None
    pick: GuidePick | None
    decision: str


@dataclass(frozen=True)
class Moment:
    """The instant a request is decided at and the zone hours are read in: one for the whole offer."""
    now: dt.datetime
    zone: ZoneInfo


async def active_code(services, code: str) -> QrCode:
    async with services.db.session() as session:
        qrcode = await session.scalar(select(QrCode).where(QrCode.code == code))
    if qrcode is None:
        raise DomainError(404, "unknown_code", f"no QR code {code!r}")
    if qrcode.status != "active":
        raise DomainError(410, "code_disabled", f"QR code {code!r} is disabled")
    return qrcode


def _store_json(card: StoreCard, distance_m: float | None) -> dict:
    return {"code": card.code, "name": card.name, "city": card.city, "address": card.address,
            "distance_m": None if distance_m is None else round(distance_m)}


async def _fallback(session, kv, adds: GuideAdds, qrcode: QrCode, at: Moment, skip: set[str],
                    otherwise: str) -> Decision:
    store_code = qrcode.fallback.get("store_code")
    if store_code:
        pick = await choose_guide(session, kv, store_code, qrcode.guide_rule, at.now, adds=adds, zone=at.zone,
                                  skip=skip)
        if pick is not None:
            return Decision(store_code, None, pick, "fallback_store")
    userid = qrcode.fallback.get("guide_userid")
    if userid and userid not in skip:
        guide = await guide_if_available(session, userid, at.now, adds=adds, zone=at.zone)
        if guide is not None:
            return Decision(guide.store_code, None, GuidePick(guide, "fallback"), "fallback_guide")
    return Decision(None, None, None, otherwise)


async def _resolve(services, qrcode: QrCode, step: str, decide: Callable[..., Awaitable[Decision]],
                   nearby: list[dict], visitor: str | None, at: Moment, record: bool, **details) -> dict:
    """Decide, find the guide's contact way, record the funnel row; answer the offer.

    A guide WeCom refuses is skipped and the decision taken again without them, so the customer
    gets the store's next guide, its backup, the next store or the fallback before any error.
    """
    def funnel(d: Decision):
        return funnel_row(step, qrcode_code=qrcode.code, channel_code=qrcode.channel_code, at=at.now,
                          store_code=d.store_code, guide_userid=d.pick and d.pick.guide.userid, visitor=visitor,
                          decision=d.decision, distance_m=d.distance_m and round(d.distance_m), **details)

    refused: set[str] = set()
    while True:
        async with services.db.session() as session, session.begin():
            d = await decide(session, refused)
            qr_code = d.pick and await cached_qr_code(services.kv, d.pick.guide.userid, qrcode.channel_code)
            if record and ((d.pick is None and not refused) or qr_code):
                session.add(funnel(d))
        if d.pick is None or qr_code:
            break
        userid = d.pick.guide.userid
        if await is_unreachable(services.kv, userid):
            refused.add(userid)
            continue
        try:
            way = await contact_way_for(services, userid, d.pick.guide.store_code, qrcode.channel_code)
        except (RateLimited, WeComUnavailable) as exc:  # WeCom itself is in trouble: the next guide would be too
            log.error("contact way for %s failed: %s", userid, exc)
            raise DomainError(503, "wecom_unavailable", NO_GUIDE_REACHABLE) from None
        except WeComAPIError as exc:
            log.error("WeCom refused a contact way for guide %s (errcode %s: %s); passing them over",
                      userid, exc.errcode, exc.errmsg)
            if exc.errcode in MEMBER_UNKNOWN_ERRCODES:
                await mark_unreachable(services.kv, userid)
            refused.add(userid)
            if len(refused) >= MAX_REFUSED_GUIDES:
                break
            continue
        qr_code = way.qr_code
        if record:
            async with services.db.session() as session, session.begin():
                session.add(funnel(d))
        break
    if not qr_code and refused:
        if record:
            async with services.db.session() as session, session.begin():
                session.add(funnel(Decision(d.store_code, d.distance_m, None, "guide_unreachable")))
        raise DomainError(503, "guide_unreachable", NO_GUIDE_REACHABLE,
                       {"refused_guides": len(refused)})
    card = directory_for(services).cards.get(d.store_code or "")
    return {
        "decision": d.decision,
        "open_now": bool(card and card.open_at(at.now, at.zone)),
        "store": _store_json(card, d.distance_m) if card else None,
        "guide": d.pick and {"userid": d.pick.guide.userid, "name": d.pick.guide.name,
                             "assigned_by": d.pick.reason},
        "qr_code": qr_code or None,
        "nearby": [s for s in nearby if s["code"] != d.store_code],
    }


def _moment(services, now: dt.datetime | None) -> Moment:
    return Moment(now or utcnow(), corp_timezone(services.settings))


async def locate(services, qrcode: QrCode, lat, lng, coord_system: str, visitor: str | None,
                 now: dt.datetime | None = None, *, record: bool = True) -> dict:
    """The offer for a customer at (lat, lng) in `coord_system`; DomainError 400 on bad coordinates."""
    at = _moment(services, now)
    try:
        lat, lng = to_gcj02(lat, lng, coord_system)
    except (InvalidCoordinates, ValueError) as exc:
        raise DomainError(400, "invalid_coordinates", str(exc)) from None
    directory = directory_for(services)
    await directory.refresh(services)
    stores, _ = directory.nearest(lat, lng, qrcode.radius_m, at.now, limit=NEARBY_LIMIT, zone=at.zone)
    adds = guide_adds(services)

    async def decide(session, skip: set[str]) -> Decision:
        for position, (card, distance) in enumerate(stores):
            pick = await choose_guide(session, services.kv, card.code, qrcode.guide_rule, at.now,
                                      adds=adds, zone=at.zone, skip=skip)
            if pick is not None:
                return Decision(card.code, distance, pick, "nearest" if position == 0 else "next_nearest")
        return await _fallback(session, services.kv, adds, qrcode, at, skip,
                               "no_guide" if stores else "out_of_range")

    nearby = [_store_json(card, distance) for card, distance in stores]
    return await _resolve(services, qrcode, "locate", decide, nearby, visitor, at, record,
                          lat=round(lat, 3), lng=round(lng, 3))


async def choose(services, qrcode: QrCode, store_code: str | None, visitor: str | None,
                 now: dt.datetime | None = None, *, record: bool = True) -> dict:
    """The customer picked a store (from the nearby list or the city picker), or asked for the fallback."""
    at = _moment(services, now)
    directory = directory_for(services)
    await directory.refresh(services)
    if store_code is not None:
        card = directory.cards.get(store_code)
        if card is None or card.status != "open":
            raise DomainError(404, "unknown_store", f"no open store {store_code!r}")
    adds = guide_adds(services)

    async def decide(session, skip: set[str]) -> Decision:
        if store_code is None:
            return await _fallback(session, services.kv, adds, qrcode, at, skip, "no_guide")
        pick = await choose_guide(session, services.kv, store_code, qrcode.guide_rule, at.now,
                                  adds=adds, zone=at.zone, skip=skip)
        return Decision(store_code, None, pick, "chosen" if pick else "no_guide")

    return await _resolve(services, qrcode, "choose", decide, [], visitor, at, record)
