"""/emulator/* endpoints: seed the world, flip switches, read what was called and delivered, drive scenes.

Everything here is for tests and for a person with curl; none of it exists at the real WeCom.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict

import segno
from aiohttp import web

from .api_groupmsg import confirm_group_send
from .keys import DRIVER, STATE

DRIVE_ACTIONS = frozenset(
    {
        "customer_adds_guide",
        "customer_scans_contact_way",
        "customer_deletes_guide",
        "guide_deletes_customer",
        "customer_writes_kf",
        "customer_enters_kf_session",
        "guide_writes_app",
        "guide_taps_menu",
        "handover_fails",
    }
)
CONFIG_FIELDS = (
    "callback_url",
    "rate_limit_per_minute",
    "group_send_cap_per_month",
    "kf_empty_pages",
    "app_messages_per_member_per_minute",
)

routes = web.RouteTableDef()


def setup_control_routes(app: web.Application) -> None:
    app.router.add_routes(routes)


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=sorted)


# Reading what happened


@routes.get("/emulator/calls")
async def list_calls(request: web.Request) -> web.Response:
    """Every API call (token and secret left out); `?path=externalcontact/add_contact_way` filters."""
    calls = list(request.app[STATE].calls)
    if path := request.query.get("path"):
        calls = [call for call in calls if call["path"] == path]
    return web.json_response(calls, dumps=_dumps)


@routes.get("/emulator/outbox")
async def list_outbox(request: web.Request) -> web.Response:
    """What reached customers and guides; filter with `?channel=welcome|kf|kf_welcome|app|groupmsg&to=`."""
    entries = list(request.app[STATE].outbox)
    for field in ("channel", "to"):
        if value := request.query.get(field):
            entries = [entry for entry in entries if entry.get(field) == value]
    return web.json_response(entries, dumps=_dumps)


@routes.get("/emulator/callbacks")
async def list_callbacks(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[STATE].callbacks), dumps=_dumps)


@routes.get("/emulator/state")
async def show_state(request: web.Request) -> web.Response:
    state = request.app[STATE]
    summary = {
        "corp_id": state.corp_id,
        "agent_id": state.agent_id,
        "now": state.now(),
        "members": [asdict(m) for m in state.members.values()],
        "customers": [asdict(c) for c in state.customers.values()],
        "tags": [asdict(t) for t in state.tags.values()],
        "contact_ways": list(state.contact_ways.values()),
        "kf_accounts": state.kf_accounts,
        "group_sends": [asdict(s) for s in state.group_sends.values()],
        "transfers": [asdict(t) for t in state.transfers],
    }
    return web.json_response(summary, dumps=_dumps)


@routes.get("/emulator/contact_way/{config_id}.png")
async def contact_way_qr(request: web.Request) -> web.Response:
    config_id = request.match_info["config_id"]
    if config_id not in request.app[STATE].contact_ways:
        raise web.HTTPNotFound(text="no such contact way")
    png = io.BytesIO()
    segno.make(f"{request.url.origin()}/emulator/contact_way/{config_id}").save(png, kind="png", scale=4)
    return web.Response(body=png.getvalue(), content_type="image/png")


# Seeding the world


@routes.post("/emulator/members")
async def add_members(request: web.Request) -> web.Response:
    body = await _body(request)
    state = request.app[STATE]
    for member in body.get("members") or [body]:
        state.add_member(member["userid"], member.get("name"), resigned=bool(member.get("resigned")))
    return web.json_response({"members": len(state.members)})


@routes.post("/emulator/contacts")
async def add_contact(request: web.Request) -> web.Response:
    body = await _body(request)
    customer = request.app[STATE].add_customer(
        body["external_userid"],
        body.get("name"),
        unionid=body.get("unionid", ""),
        gender=body.get("gender", 0),
        follow=body.get("follow"),
        state=body.get("state", ""),
    )
    return web.json_response(asdict(customer), dumps=_dumps)


@routes.post("/emulator/kf/accounts")
async def add_kf_account(request: web.Request) -> web.Response:
    body = await _body(request)
    request.app[STATE].add_kf_account(body["open_kfid"], body.get("name"))
    return web.json_response({"open_kfid": body["open_kfid"]})


@routes.post("/emulator/tags")
async def add_tag(request: web.Request) -> web.Response:
    body = await _body(request)
    tag = request.app[STATE].add_corp_tag(body["name"], body.get("group_name", "默认"))
    return web.json_response(asdict(tag))


# Switches


@routes.post("/emulator/config")
async def configure(request: web.Request) -> web.Response:
    body = await _body(request)
    state = request.app[STATE]
    for field in CONFIG_FIELDS:
        if field in body:
            setattr(state, field, body[field])
    return web.json_response({field: getattr(state, field) for field in CONFIG_FIELDS})


@routes.post("/emulator/tokens/expire")
async def expire_tokens(request: web.Request) -> web.Response:
    request.app[STATE].expire_tokens()
    return web.json_response({"expired": len(request.app[STATE].tokens)})


@routes.post("/emulator/faults")
async def add_fault(request: web.Request) -> web.Response:
    """`{"errcode": -1, "times": 2, "path": "kf/send_msg", "delay": 0}`; errcode 0 + delay = just slow."""
    body = await _body(request)
    request.app[STATE].fail_next(
        int(body["errcode"]),
        int(body.get("times", 1)),
        path=body.get("path"),
        delay=float(body.get("delay", 0)),
    )
    return web.json_response({"faults": len(request.app[STATE].faults)})


@routes.post("/emulator/clock/advance")
async def advance_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not hasattr(state.clock, "advance"):
        raise web.HTTPConflict(text="this emulator's clock cannot be advanced")
    state.clock.advance(float((await _body(request))["seconds"]))
    return web.json_response({"now": state.now()})


# Playing the people


@routes.post("/emulator/groupmsg/{msgid}/confirm")
async def confirm_groupmsg(request: web.Request) -> web.Response:
    """The guide confirms a group-send task in their WeCom client (optionally `{"sender": userid}`)."""
    body = await _body(request)
    try:
        result = confirm_group_send(request.app[STATE], request.match_info["msgid"], body.get("sender"))
    except KeyError:
        raise web.HTTPNotFound(text="no such group send (or sender has no task in it)") from None
    except ValueError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return web.json_response(result)


@routes.post("/emulator/drive/{action}")
async def drive(request: web.Request) -> web.Response:
    """Play a scene: `/emulator/drive/customer_adds_guide` with `{"external_userid": …, "userid": …}`."""
    action = request.match_info["action"]
    if action not in DRIVE_ACTIONS:
        raise web.HTTPNotFound(text=f"actions: {', '.join(sorted(DRIVE_ACTIONS))}")
    body = await _body(request)
    try:
        result = await getattr(request.app[DRIVER], action)(**body)
    except (TypeError, KeyError, IndexError) as exc:
        raise web.HTTPBadRequest(text=f"{action}: {exc}") from None
    return web.json_response(result, dumps=_dumps)
