"""微信客服: customers' messages for sync_msg, and replies within the 48 h / 5 message window."""

from __future__ import annotations

from .api_base import (
    EMPTY_TEXT,
    INVALID_KF_SYNC_TOKEN,
    INVALID_MSGTYPE,
    INVALID_OPEN_KFID,
    INVALID_PARAMETER,
    KF_SEND_COUNT_EXCEEDED,
    KF_SEND_WINDOW_CLOSED,
    MISSING_WELCOME_CODE,
    MSGID_PATTERN,
    WELCOME_CODE_INVALID,
    WELCOME_CODE_USED,
    ApiError,
    Call,
    api,
    check_text,
    page,
    required,
)
from .state import KF_MESSAGES_PER_WINDOW, KF_WINDOW, EmulatorState, new_id

KF_TEXT_BYTES = 2048
KF_MSGTYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "link",
        "miniprogram",
        "msgmenu",
        "location",
        "business_card",
        "ca_link",
    }
)


def _open_kfid(state: EmulatorState, call: Call) -> str:
    open_kfid = call.params.get("open_kfid")
    if open_kfid not in state.kf_accounts:
        raise ApiError(INVALID_OPEN_KFID, "invalid open_kfid")
    return open_kfid


@api("kf/sync_msg")
def sync_msg(state: EmulatorState, call: Call) -> dict:
    open_kfid = _open_kfid(state, call)
    token = call.params.get("token")
    if token is not None and state.kf_sync_tokens.get(token, 0) <= state.clock():
        raise ApiError(INVALID_KF_SYNC_TOKEN, "invalid or expired sync token")
    cursor = call.params.get("cursor") or "0"
    if state.kf_empty_pages > 0:
        # WeCom may answer an empty page that still says has_more; callers must keep going.
        state.kf_empty_pages -= 1
        return {"next_cursor": cursor, "has_more": 1, "msg_list": []}
    items, next_cursor = page(state.kf_messages.get(open_kfid, []), call.params, default=1000, maximum=1000)
    if not next_cursor:
        next_cursor = str(int(cursor) + len(items))
        has_more = 0
    else:
        has_more = 1
    return {"next_cursor": next_cursor, "has_more": has_more, "msg_list": items}


def _message_payload(params: dict) -> dict:
    msgtype = required(params, "msgtype")
    if msgtype not in KF_MSGTYPES:
        raise ApiError(INVALID_MSGTYPE, "invalid msgtype")
    if msgtype == "text" and not check_text(params.get("text"), KF_TEXT_BYTES):
        raise ApiError(EMPTY_TEXT, "empty text content")
    if msgtype != "text" and not isinstance(params.get(msgtype), dict):
        raise ApiError(INVALID_PARAMETER, f"missing {msgtype} object")
    return {"msgtype": msgtype, msgtype: params.get(msgtype)}


def _msgid(params: dict) -> str:
    msgid = params.get("msgid")
    if msgid is None:
        return new_id("", 16)
    if not isinstance(msgid, str) or not MSGID_PATTERN.fullmatch(msgid):
        raise ApiError(INVALID_PARAMETER, "msgid must be 1..32 of [0-9a-zA-Z_-]")
    return msgid


@api("kf/send_msg")
def send_msg(state: EmulatorState, call: Call) -> dict:
    params = call.params
    open_kfid = _open_kfid(state, call)
    touser = required(params, "touser")
    msgid = _msgid(params)
    payload = _message_payload(params)
    if (open_kfid, msgid) in state.kf_sent_msgids:
        return {"msgid": msgid}  # a repeat of a delivered message: answer ok, deliver nothing
    window = state.kf_windows.get((open_kfid, touser))
    if window is None or state.clock() - window.last_customer_message > KF_WINDOW:
        raise ApiError(KF_SEND_WINDOW_CLOSED, "more than 48 hours since the customer's last message")
    if window.sent >= KF_MESSAGES_PER_WINDOW:
        raise ApiError(KF_SEND_COUNT_EXCEEDED, f"at most {KF_MESSAGES_PER_WINDOW} messages per window")
    window.sent += 1
    state.kf_sent_msgids.add((open_kfid, msgid))
    state.deliver("kf", open_kfid=open_kfid, to=touser, msgid=msgid, **payload)
    return {"msgid": msgid}


@api("kf/send_msg_on_event")
def send_msg_on_event(state: EmulatorState, call: Call) -> dict:
    params = call.params
    code = required(params, "code", MISSING_WELCOME_CODE)
    msgid = _msgid(params)
    payload = _message_payload(params)
    issued = state.welcome_codes.get(code)
    if issued is None or not issued.open_kfid or issued.expires_at <= state.clock():
        raise ApiError(WELCOME_CODE_INVALID, "invalid or expired code")
    if issued.used:
        raise ApiError(WELCOME_CODE_USED, "code already used")
    issued.used = True
    state.kf_sent_msgids.add((issued.open_kfid, msgid))
    state.deliver("kf_welcome", open_kfid=issued.open_kfid, to=issued.external_userid, msgid=msgid, **payload)
    return {"msgid": msgid}
