"""create_emulator_app: WeCom's /cgi-bin API with its rules, plus /emulator endpoints to seed and inspect."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

from bot.wecom.crypto import CallbackCrypto

# Importing the handler modules registers their endpoints in API.
from . import api_app, api_cards, api_contact_way, api_customer, api_groupmsg, api_kf, api_user  # noqa: F401
from .api_base import API, BAD_JSON, ApiError, Call
from .control import setup_control_routes
from .driver import EmulatorDriver
from .keys import DRIVER, STATE
from .state import EmulatorState

SECRET_QUERY = frozenset({"access_token", "corpsecret"})  # never kept in the call record


def default_crypto(state: EmulatorState) -> CallbackCrypto:
    from bot.config import EMULATOR_AES_KEY, EMULATOR_TOKEN

    return CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, state.corp_id)


def create_emulator_app(
    state: EmulatorState | None = None,
    *,
    crypto: CallbackCrypto | None = None,
    callback_url: str | None = None,
) -> web.Application:
    """The emulator as an aiohttp app; `callback_url` is where the driver posts events (settable later)."""
    state = state or EmulatorState()
    if callback_url:
        state.callback_url = callback_url
    app = web.Application()
    app[STATE] = state
    app.cleanup_ctx.append(_driver_ctx(crypto or default_crypto(state)))
    app.router.add_route("*", "/cgi-bin/{path:.+}", handle_api)
    setup_control_routes(app)
    return app


def _driver_ctx(crypto: CallbackCrypto):
    async def driver(app: web.Application):
        async with aiohttp.ClientSession() as session:
            # callback_url None: the driver reads state.callback_url at each post.
            app[DRIVER] = EmulatorDriver(app[STATE], None, crypto, session)
            yield

    return driver


async def handle_api(request: web.Request) -> web.Response:
    state = request.app[STATE]
    path = request.match_info["path"]
    handler = API.get(path)
    if handler is None:
        return web.json_response({"errcode": 404, "errmsg": f"emulator has no {path}"}, status=404)
    query = {key: value for key, value in request.query.items() if key != "access_token"}
    body, app_name, fault = None, None, None
    try:
        body = await _json_body(request)
        state.settle_transfers()
        fault = state.take_fault(path)
        if fault and fault.errcode:
            raise ApiError(fault.errcode, "injected by the emulator")
        if path != "gettoken":
            app_name = state.check_token(request.query.get("access_token"))
        state.count_call(path)
        base_url = str(request.url.origin())
        answer = {
            "errcode": 0,
            "errmsg": "ok",
            **handler(state, Call(path, {**query, **body}, app_name, base_url)),
        }
    except ApiError as exc:
        answer = {"errcode": exc.errcode, "errmsg": exc.errmsg}
    shown_query = {key: value for key, value in query.items() if key not in SECRET_QUERY}
    state.record_call(
        path=path,
        method=request.method,
        query=shown_query,
        body=body,
        errcode=answer["errcode"],
        app=app_name,
    )
    if fault and fault.delay:
        # Slow answers come after the work is done: the caller cannot tell whether it happened.
        await asyncio.sleep(fault.delay)
    return web.json_response(answer)


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(BAD_JSON, "Warning: wrong json format.") from None
    if not isinstance(body, dict):
        raise ApiError(BAD_JSON, "Warning: wrong json format.")
    return body
