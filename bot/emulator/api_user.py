"""The address book: `user/get` answers the emulated corp's members (60111 for anyone else)."""

from __future__ import annotations

from .api_base import ApiError, Call, api, required
from .state import EmulatorState

USERID_NOT_FOUND = 60111


@api("user/get")
def get_user(state: EmulatorState, call: Call) -> dict:
    userid = required(call.params, "userid")
    member = state.members.get(userid) if isinstance(userid, str) else None
    if member is None:
        raise ApiError(USERID_NOT_FOUND, f"userid not found: {userid!r}")
    # WeCom's status: 1 active, 5 left the corp.
    return {"userid": member.userid, "name": member.name, "status": 5 if member.resigned else 1}
