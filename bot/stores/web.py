"""Public pages of the aggregated QR codes: the landing page, locate/choose, the picker, QR images.

No login: these are what a customer's WeChat opens. A first-party cookie names the visitor so the
funnel can follow one scan through locate and choice without any personal data.
Anonymous traffic is bounded: JSON bodies over MAX_BODY_BYTES are refused before they are read,
and each client address writes a few funnel rows per code and minute (funnel.py).
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
import re
import secrets
from functools import lru_cache
from pathlib import Path

import segno
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from bot.api.errors import ApiError
from bot.api.spec import validation_details
from bot.errors import DomainError
from bot.lbs import CoordSystem
from bot.services import SERVICES
from bot.stores.directory import directory_for
from bot.stores.funnel import record_step, visitor_may_write
from bot.stores.locate import active_code, choose, locate
from bot.stores.models import Channel, QrCode
from bot.wiring import provided

COUPON_NAME = "stores.coupon_name"  # (session, template code) -> name | None, from the members feature

log = logging.getLogger("bot.stores.web")

CODE = r"{code:[A-Za-z0-9]{1,16}}"
VISITOR_COOKIE = "wa_v"
LANDING_HTML = (Path(__file__).parent / "static" / "landing.html").read_text(encoding="utf-8")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
DEFAULT_TITLE = "添加您的专属导购"
DEFAULT_BENEFIT = "附近门店的导购为您一对一服务"
# Printed posters: a PNG up to this many pixels wide (?size=); the SVG scales by itself.
PNG_DEFAULT_SCALE = 10
PNG_MAX_PIXELS = 2400
# The public JSON bodies are a few dozen bytes; anything bigger is refused before it is read.
MAX_BODY_BYTES = 4 * 1024


class LocateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(strict=True, allow_inf_nan=False)
    lng: float = Field(strict=True, allow_inf_nan=False)
    coord_system: CoordSystem = CoordSystem.WGS84  # what a browser's geolocation gives


class ChooseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_code: str | None = Field(None, min_length=1, max_length=32)
    fallback: bool = False


def landing_url(settings, code: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/qr/{code}"


def _client(request: web.Request) -> str:
    """The address the request came from: the unit of the funnel's per-visitor allowance."""
    return request.remote or "unknown"


def _visitor(request: web.Request) -> str | None:
    value = request.cookies.get(VISITOR_COOKIE, "")
    return value if value.isalnum() and len(value) <= 64 else None


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed `limit` (announced or streamed)."""
    too_large = ApiError(413, "body_too_large", f"request body exceeds {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await _read_limited(request, MAX_BODY_BYTES)
    try:
        data = json.loads(raw.decode("utf-8") or "null")
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, >4300-digit integers, deep nesting
        raise ApiError(400, "malformed_json", f"request body is not JSON: {str(exc)[:200]}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", "invalid body", validation_details(exc)) from None


def _message_page(status: int, title: str, text: str) -> web.Response:
    page = (f'<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f'<body style="font-family:sans-serif;text-align:center;padding:3em 1em;color:#333">'
            f'<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p></body></html>')
    return web.Response(status=status, text=page, content_type="text/html")


async def _render_landing(services, qrcode: QrCode) -> str:
    """The page in the customer's words: public title, brand and the channel's new-member benefit."""
    async with services.db.session() as session:
        words = (await session.execute(
            select(Channel.benefit_text, Channel.benefit_template_code).where(Channel.code == qrcode.channel_code)
        )).first()
        benefit_text, template_code = words or (None, None)
        coupon_name = None
        if not benefit_text and template_code and (name_of := provided(services, COUPON_NAME)) is not None:
            coupon_name = await name_of(session, template_code)  # the members feature's coupon templates
    benefit = benefit_text or (coupon_name and f"添加导购即享新人礼：{coupon_name}") or DEFAULT_BENEFIT
    title = qrcode.public_title or DEFAULT_TITLE  # never `name`: that is HQ's internal label
    brand = services.settings.brand_name
    values = {
        "code": qrcode.code, "title": title, "brand": brand, "benefit": benefit,
        "page_title": f"{title} - {brand}" if brand else title,
        "has_fallback": "true" if qrcode.fallback.get("store_code") or qrcode.fallback.get("guide_userid") else "false",
    }
    # One pass, so a value that happens to contain "{{…}}" is never substituted again.
    return _PLACEHOLDER.sub(lambda m: html.escape(values[m.group(1)]), LANDING_HTML)


async def landing_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    code = request.match_info["code"]
    try:
        qrcode = await active_code(services, code)
    except DomainError as exc:
        title = "二维码已停用" if exc.status == 410 else "二维码不存在"
        return _message_page(exc.status, title, "请联系门店工作人员获取新的二维码。")
    visitor = _visitor(request) or secrets.token_hex(12)
    if await visitor_may_write(services.kv, "scan", qrcode.code, _client(request)):
        try:
            await record_step(services.db, "scan", qrcode_code=qrcode.code, channel_code=qrcode.channel_code,
                              visitor=visitor, user_agent=request.headers.get("User-Agent", "")[:200])
        except Exception as exc:  # the customer's page matters more than the statistics row
            log.warning("scan of %s not recorded: %s", qrcode.code, exc)
    page = await _render_landing(services, qrcode)
    response = web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})
    response.set_cookie(VISITOR_COOKIE, visitor, max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


async def locate_view(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    qrcode = await active_code(services, request.match_info["code"])
    body: LocateBody = await _body(request, LocateBody)
    record = await visitor_may_write(services.kv, "locate", qrcode.code, _client(request))
    offer = await locate(services, qrcode, body.lat, body.lng, body.coord_system, _visitor(request), record=record)
    return web.json_response(offer)


async def choose_view(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    qrcode = await active_code(services, request.match_info["code"])
    body: ChooseBody = await _body(request, ChooseBody)
    if (body.store_code is None) != body.fallback:
        raise ApiError(400, "invalid_request", "give either store_code or fallback: true")
    record = await visitor_may_write(services.kv, "choose", qrcode.code, _client(request))
    offer = await choose(services, qrcode, body.store_code, _visitor(request), record=record)
    return web.json_response(offer)


async def stores_by_city(request: web.Request) -> web.Response:
    """The picker's data: open stores grouped by city."""
    services = request.app[SERVICES]
    qrcode = await active_code(services, request.match_info["code"])
    directory = directory_for(services)
    await directory.refresh(services)
    cities = [
        {"city": city, "stores": [{"code": c.code, "name": c.name, "address": c.address} for c in cards]}
        for city, cards in directory.cities().items()
    ]
    fallback = bool(qrcode.fallback.get("store_code") or qrcode.fallback.get("guide_userid"))
    return web.json_response({"cities": cities, "has_fallback": fallback})


@lru_cache(maxsize=64)
def _render_qr(url: str, kind: str, scale: int) -> bytes:
    """Cached: a public route, and a print-size PNG takes milliseconds to draw."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind=kind, scale=scale, border=2,
                                    **({"xmldecl": False} if kind == "svg" else {}))
    return buffer.getvalue()


def _png_scale(url: str, size: str | None) -> int:
    """Pixels per module for `?size=` (the PNG's width in pixels; rounded up to whole modules)."""
    if size is None:
        return PNG_DEFAULT_SCALE
    if not size.isdigit() or not 100 <= int(size) <= PNG_MAX_PIXELS:
        raise ApiError(400, "invalid_request", f"size must be 100 to {PNG_MAX_PIXELS} pixels",
                       [{"field": "size", "problem": f"{size[:20]!r} is not 100..{PNG_MAX_PIXELS}"}])
    modules = segno.make(url, error="m").symbol_size(border=2)[0]
    return math.ceil(int(size) / modules)


async def qr_image(request: web.Request) -> web.Response:
    """The code's QR: SVG as is, PNG at `?size=` pixels (e.g. 1200 for print)."""
    services = request.app[SERVICES]
    qrcode = await active_code(services, request.match_info["code"])
    url = landing_url(services.settings, qrcode.code)
    if request.match_info["kind"] == "svg":
        return web.Response(body=_render_qr(url, "svg", 10), content_type="image/svg+xml")
    scale = _png_scale(url, request.query.get("size"))
    return web.Response(body=_render_qr(url, "png", scale), content_type="image/png")


def setup_routes(app: web.Application) -> None:
    app.router.add_get(f"/qr/{CODE}.{{kind:png|svg}}", qr_image)
    app.router.add_get(f"/qr/{CODE}", landing_page)
    app.router.add_post(f"/qr/{CODE}/locate", locate_view)
    app.router.add_post(f"/qr/{CODE}/choose", choose_view)
    app.router.add_get(f"/qr/{CODE}/stores", stores_by_city)
