"""gettoken, and app messages to members (message/send)."""

from __future__ import annotations

from .api_base import (
    CONTENT_TOO_LONG,
    EMPTY_TEXT,
    FREQUENCY_LIMIT,
    INVALID_AGENTID,
    INVALID_CORPID,
    INVALID_MSGTYPE,
    INVALID_PARAMETER,
    INVALID_SECRET,
    INVALID_USERID_LIST_SIZE,
    MISSING_CORPID,
    MISSING_SECRET,
    ApiError,
    Call,
    api,
    required,
)
from .state import EmulatorState, new_id

MAX_TOUSER = 1000
APP_TEXT_BYTES = 2048
ALL_MEMBERS_INVALID = 81013
APP_MSGTYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "markdown",
        "miniprogram_notice",
        "template_card",
    }
)


@api("gettoken")
def gettoken(state: EmulatorState, call: Call) -> dict:
    corpid = required(call.params, "corpid", MISSING_CORPID)
    secret = required(call.params, "corpsecret", MISSING_SECRET)
    if corpid != state.corp_id:
        raise ApiError(INVALID_CORPID, "invalid corpid")
    app = next((name for name, value in state.secrets.items() if value == secret), None)
    if app is None:
        raise ApiError(INVALID_SECRET, "invalid credential")
    token, expires_in = state.issue_token(app)
    return {"access_token": token, "expires_in": expires_in}


@api("message/send")
def send_message(state: EmulatorState, call: Call) -> dict:
    params = call.params
    if params.get("agentid") != state.agent_id:
        raise ApiError(INVALID_AGENTID, "invalid agentid")
    msgtype = required(params, "msgtype")
    if msgtype not in APP_MSGTYPES or not isinstance(params.get(msgtype), dict):
        raise ApiError(INVALID_MSGTYPE, "invalid msgtype or missing its object")
    if msgtype in ("text", "markdown"):
        content = params[msgtype].get("content") or ""
        if not content:
            raise ApiError(EMPTY_TEXT, "empty content")
        if len(content.encode()) > APP_TEXT_BYTES:
            raise ApiError(CONTENT_TOO_LONG, f"content exceeds {APP_TEXT_BYTES} bytes")
    touser = params.get("touser") or ""
    if not isinstance(touser, str):
        raise ApiError(INVALID_PARAMETER, 'touser is a "|"-separated string')
    userids = list(state.members) if touser == "@all" else [u for u in touser.split("|") if u]
    if len(userids) > MAX_TOUSER and touser != "@all":
        raise ApiError(INVALID_USERID_LIST_SIZE, f"at most {MAX_TOUSER} users")
    valid = [u for u in userids if u in state.members and not state.members[u].resigned]
    invalid = [u for u in userids if u not in valid]
    if not valid:
        raise ApiError(ALL_MEMBERS_INVALID, "all touser invalid")
    if not all([state.count_app_message(u) for u in valid]):
        raise ApiError(FREQUENCY_LIMIT, "a member got more than 30 app messages this minute")
    msgid = new_id("appmsg-", 12)
    for userid in valid:
        state.deliver("app", to=userid, msgid=msgid, msgtype=msgtype, **{msgtype: params[msgtype]})
    return {"invaliduser": "|".join(invalid), "msgid": msgid}
