"""Admin API for channels and aggregated QR codes (HQ creates them; stores only use them)."""

from __future__ import annotations

import secrets
import string
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.config import public_base_url_is_loopback
from bot.stores.models import Channel, Guide, QrCode, Store
from bot.stores.schemas import (
    ChannelIn,
    ChannelList,
    ChannelOut,
    Fallback,
    GuideRule,
    QrCodeIn,
    QrCodeList,
    QrCodeOut,
)
from bot.stores.web import landing_url

READERS = [Role.HQ_ADMIN, Role.STORE_MANAGER]
# Lowercase letters and digits without look-alikes: codes may be typed from a printed poster.
CODE_ALPHABET = "".join(c for c in string.ascii_lowercase + string.digits if c not in "0o1l")


def new_code(length: int = 8) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def qrcode_out(settings, row: QrCode) -> QrCodeOut:
    url = landing_url(settings, row.code)
    return QrCodeOut(
        code=row.code, name=row.name, public_title=row.public_title, channel_code=row.channel_code,
        radius_m=row.radius_m, store_rule=row.store_rule, guide_rule=row.guide_rule, fallback=row.fallback, status=row.status,
        landing_url=url, png_url=url + ".png", svg_url=url + ".svg",
    )


@api.route("POST", "/api/v1/channels", summary="Create a channel (tags, welcome text, benefit)",
           roles=[Role.HQ_ADMIN], body=ChannelIn, response=ChannelOut, status=201)
async def create_channel(call: ApiCall) -> ChannelOut:
    body: ChannelIn = call.body
    try:
        async with call.services.db.session() as session, session.begin():
            if await session.scalar(select(Channel.id).where(Channel.code == body.code)):
                raise ApiError(409, "channel_exists", f"channel {body.code!r} already exists")
            channel = Channel(**body.model_dump())
            session.add(channel)
    except IntegrityError:
        raise ApiError(409, "channel_exists", f"channel {body.code!r} already exists") from None
    return ChannelOut.model_validate(channel)


@api.route("GET", "/api/v1/channels", summary="All channels", roles=READERS, response=ChannelList)
async def list_channels(call: ApiCall) -> ChannelList:
    async with call.services.db.session() as session:
        rows = (await session.scalars(select(Channel).order_by(Channel.code))).all()
    return ChannelList(channels=[ChannelOut.model_validate(row) for row in rows])


@api.route("GET", "/api/v1/channels/{code}", summary="One channel", roles=READERS, response=ChannelOut)
async def get_channel(call: ApiCall) -> ChannelOut:
    async with call.services.db.session() as session:
        channel = await session.scalar(select(Channel).where(Channel.code == call.path["code"]))
    if channel is None:
        raise ApiError(404, "unknown_channel", f"no channel {call.path['code']!r}")
    return ChannelOut.model_validate(channel)


async def _check_references(session, channel_code: str | None, fallback: Fallback | None) -> None:
    """Unknown channel, store or guide in a code's settings: 422 naming the field."""
    problems = []
    if channel_code and not await session.scalar(select(Channel.id).where(Channel.code == channel_code)):
        problems.append({"field": "channel_code", "problem": f"no channel {channel_code!r}"})
    if fallback and fallback.store_code and not await session.scalar(
            select(Store.id).where(Store.code == fallback.store_code)):
        problems.append({"field": "fallback.store_code", "problem": f"no store {fallback.store_code!r}"})
    if fallback and fallback.guide_userid and not await session.scalar(
            select(Guide.id).where(Guide.userid == fallback.guide_userid)):
        problems.append({"field": "fallback.guide_userid", "problem": f"no guide {fallback.guide_userid!r}"})
    if problems:
        raise ApiError(422, "unknown_reference", "the code refers to things that do not exist", problems)


def _landing_unreachable_by_customers(settings) -> bool:
    """Talking to a real WeCom (not an emulator on this machine) with a loopback PUBLIC_BASE_URL."""
    api_host = urlsplit(settings.wecom_api_base_url).hostname or ""
    emulated = api_host in ("localhost", "127.0.0.1", "::1") or settings.uses_emulator
    return not emulated and public_base_url_is_loopback(settings)


@api.route("POST", "/api/v1/qrcodes", summary="Create an aggregated LBS code; answers its URLs",
           roles=[Role.HQ_ADMIN], body=QrCodeIn, response=QrCodeOut, status=201)
async def create_qrcode(call: ApiCall) -> QrCodeOut:
    body: QrCodeIn = call.body
    if _landing_unreachable_by_customers(call.services.settings):
        raise ApiError(409, "public_base_url_loopback",
                       "PUBLIC_BASE_URL names this machine, so customers' phones could not open the code's "
                       "landing page; set it to the service's public https URL first")
    async with call.services.db.session() as session, session.begin():
        await _check_references(session, body.channel_code, body.fallback)
        row = QrCode(code=new_code(), name=body.name, public_title=body.public_title,
                     channel_code=body.channel_code, radius_m=body.radius_m,
                     store_rule="nearest", guide_rule=body.guide_rule,
                     fallback=body.fallback.model_dump(exclude_none=True), status="active")
        session.add(row)
    return qrcode_out(call.services.settings, row)


@api.route("GET", "/api/v1/qrcodes", summary="Aggregated codes", roles=READERS, response=QrCodeList)
async def list_qrcodes(call: ApiCall) -> QrCodeList:
    async with call.services.db.session() as session:
        rows = (await session.scalars(select(QrCode).order_by(QrCode.id))).all()
    return QrCodeList(qrcodes=[qrcode_out(call.services.settings, row) for row in rows])


@api.route("GET", "/api/v1/qrcodes/{code}", summary="One aggregated code", roles=READERS, response=QrCodeOut)
async def get_qrcode(call: ApiCall) -> QrCodeOut:
    async with call.services.db.session() as session:
        row = await session.scalar(select(QrCode).where(QrCode.code == call.path["code"]))
    if row is None:
        raise ApiError(404, "unknown_code", f"no QR code {call.path['code']!r}")
    return qrcode_out(call.services.settings, row)


class QrCodePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # fields left out stay; none of them may be null
    name: str = Field(None, max_length=100)
    public_title: str = Field(None, max_length=60)
    status: Literal["active", "disabled"] = None
    radius_m: int = Field(None, ge=100, le=200_000)
    guide_rule: GuideRule = None
    fallback: Fallback = None


@api.route("PATCH", "/api/v1/qrcodes/{code}", summary="Change or disable a code", roles=[Role.HQ_ADMIN],
           body=QrCodePatch, response=QrCodeOut)
async def patch_qrcode(call: ApiCall) -> QrCodeOut:
    patch: QrCodePatch = call.body
    async with call.services.db.session() as session, session.begin():
        row = await session.scalar(select(QrCode).where(QrCode.code == call.path["code"]))
        if row is None:
            raise ApiError(404, "unknown_code", f"no QR code {call.path['code']!r}")
        await _check_references(session, None, patch.fallback)
        changes = patch.model_dump(exclude_unset=True)
        if "fallback" in changes:
            changes["fallback"] = patch.fallback.model_dump(exclude_none=True)
        for name, value in changes.items():
            setattr(row, name, value)
        await session.flush()
        # Answered before the commit: whatever fails to answer is not saved either.
        return qrcode_out(call.services.settings, row)
