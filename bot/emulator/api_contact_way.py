"""联系我 contact ways and the welcome message sent with a welcome code."""

from __future__ import annotations

from .api_base import (
    EMPTY_TEXT,
    INVALID_CONFIG_ID,
    INVALID_CONTACT_WAY_SCENE,
    INVALID_CONTACT_WAY_TYPE,
    INVALID_PARAMETER,
    INVALID_USERID,
    MISSING_CONFIG_ID,
    MISSING_CONTACT_WAY_SCENE,
    MISSING_CONTACT_WAY_TYPE,
    MISSING_WELCOME_CODE,
    TOO_MANY_CONTACT_WAY_USERS,
    TOO_MANY_CONTACT_WAYS,
    WELCOME_CODE_INVALID,
    WELCOME_CODE_USED,
    ApiError,
    Call,
    api,
    check_attachments,
    check_member,
    check_text,
    required,
)
from .state import EmulatorState, new_id

MAX_CONTACT_WAYS = 500_000
MAX_CONTACT_WAY_USERS = 100
MAX_STATE_CHARS = 30
MAX_REMARK_CHARS = 30
WELCOME_TEXT_BYTES = 4000
UPDATABLE = (
    "remark",
    "skip_verify",
    "style",
    "state",
    "user",
    "party",
    "expires_in",
    "chat_expires_in",
    "unionid",
    "conclusions",
)


def _check_contact_way(state: EmulatorState, way: dict) -> None:
    if way["type"] not in (1, 2):
        raise ApiError(INVALID_CONTACT_WAY_TYPE, "invalid type")
    if way["scene"] not in (1, 2):
        raise ApiError(INVALID_CONTACT_WAY_SCENE, "invalid scene")
    users = way.get("user") or []
    if not isinstance(users, list):
        raise ApiError(INVALID_PARAMETER, "user must be a list")
    if way["type"] == 1 and (len(users) != 1 or way.get("party")):
        raise ApiError(INVALID_PARAMETER, "type 1 needs exactly one user")
    if way["type"] == 2 and not (users or way.get("party")):
        raise ApiError(INVALID_PARAMETER, "type 2 needs users or parties")
    if len(users) > MAX_CONTACT_WAY_USERS:
        raise ApiError(TOO_MANY_CONTACT_WAY_USERS, f"at most {MAX_CONTACT_WAY_USERS} users")
    for userid in users:
        check_member(state, userid)
        if state.members[userid].resigned:  # a departed member is gone from the address book
            raise ApiError(INVALID_USERID, f"invalid userid {userid!r}")
    if len(way.get("state") or "") > MAX_STATE_CHARS:
        raise ApiError(INVALID_PARAMETER, f"state exceeds {MAX_STATE_CHARS} characters")
    if len(way.get("remark") or "") > MAX_REMARK_CHARS:
        raise ApiError(INVALID_PARAMETER, f"remark exceeds {MAX_REMARK_CHARS} characters")


def _find_way(state: EmulatorState, call: Call) -> dict:
    config_id = required(call.params, "config_id", MISSING_CONFIG_ID)
    way = state.contact_ways.get(config_id)
    if way is None:
        raise ApiError(INVALID_CONFIG_ID, "invalid config_id")
    return way


@api("externalcontact/add_contact_way")
def add_contact_way(state: EmulatorState, call: Call) -> dict:
    params = call.params
    way = {
        "type": required(params, "type", MISSING_CONTACT_WAY_TYPE),
        "scene": required(params, "scene", MISSING_CONTACT_WAY_SCENE),
        "style": params.get("style", 1),
        "remark": params.get("remark", ""),
        "skip_verify": params.get("skip_verify", True),
        "state": params.get("state", ""),
        "user": params.get("user") or [],
        "party": params.get("party") or [],
        "is_temp": params.get("is_temp", False),
    }
    _check_contact_way(state, way)
    if len(state.contact_ways) >= MAX_CONTACT_WAYS:
        raise ApiError(TOO_MANY_CONTACT_WAYS, "contact way limit reached")
    config_id = way["config_id"] = new_id("", 16)
    answer = {"config_id": config_id}
    if way["scene"] == 2:
        way["qr_code"] = answer["qr_code"] = f"{call.base_url}/emulator/contact_way/{config_id}.png"
    state.contact_ways[config_id] = way
    return answer


@api("externalcontact/get_contact_way")
def get_contact_way(state: EmulatorState, call: Call) -> dict:
    return {"contact_way": dict(_find_way(state, call))}


@api("externalcontact/update_contact_way")
def update_contact_way(state: EmulatorState, call: Call) -> dict:
    way = _find_way(state, call)
    changed = {**way, **{key: call.params[key] for key in UPDATABLE if key in call.params}}
    _check_contact_way(state, changed)
    way.update(changed)
    return {}


@api("externalcontact/del_contact_way")
def del_contact_way(state: EmulatorState, call: Call) -> dict:
    way = _find_way(state, call)
    del state.contact_ways[way["config_id"]]
    return {}


@api("externalcontact/send_welcome_msg")
def send_welcome_msg(state: EmulatorState, call: Call) -> dict:
    params = call.params
    code = required(params, "welcome_code", MISSING_WELCOME_CODE)
    # Check the content first so a malformed request does not burn the one-time code.
    content = check_text(params.get("text"), WELCOME_TEXT_BYTES)
    attachments = check_attachments(params.get("attachments"))
    if not content and not attachments:
        raise ApiError(EMPTY_TEXT, "text and attachments are both empty")
    issued = state.welcome_codes.get(code)
    if issued is None or issued.open_kfid or issued.expires_at <= state.clock():
        raise ApiError(WELCOME_CODE_INVALID, "invalid or expired welcome_code")
    if issued.used:
        raise ApiError(WELCOME_CODE_USED, "welcome_code already used")
    issued.used = True
    state.deliver(
        "welcome",
        sender=issued.userid,
        to=issued.external_userid,
        text=params.get("text"),
        attachments=attachments,
    )
    return {}
