"""What every emulated endpoint shares: the error type, the errcodes, the registry and field checks.

Errcodes come from WeCom's global errcode list (doc 90313) where it names the case. Cases it does
not name use the code marked *unconfirmed* below; each is a constant here so one edit fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import EmulatorState

SYSTEM_BUSY = -1
INVALID_SECRET = 40001
INVALID_USERID = 40003  # "UserID must exist in the address book"
INVALID_MSGTYPE = 40008
INVALID_CORPID = 40013
INVALID_TOKEN = 40014
INVALID_USERID_LIST_SIZE = 40032  # message/send: at most 1000 members
INVALID_AGENTID = 40056
INVALID_PARAMETER = 40058  # the generic "parameter does not meet the API's rules"
INVALID_TAG_ID = 40068
TAG_NAME_EXISTS = 40071
INVALID_EXTERNAL_USERID = 40096
NOT_RESIGNED = 40097
TOO_MANY_CORP_TAGS = 40126
TRANSFER_IN_PROGRESS = 40129
SAME_HANDOVER_AND_TAKEOVER = 40130
NOT_FOLLOWER = 40131
MISSING_TOKEN = 41001
MISSING_CORPID = 41002
MISSING_SECRET = 41004
MISSING_EXTERNAL_USERID = 41035
MISSING_CONTACT_WAY_TYPE = 41037
MISSING_CONTACT_WAY_SCENE = 41038
INVALID_CONTACT_WAY_TYPE = 41039
INVALID_CONTACT_WAY_SCENE = 41040
TOO_MANY_CONTACT_WAY_USERS = 41041  # more than 100 members
MISSING_CONFIG_ID = 41043
INVALID_CONFIG_ID = 41044
TOO_MANY_CONTACT_WAYS = 41045
MISSING_GROUPMSG_ID = 41046
INVALID_GROUPMSG_ID = 41047
NO_RECEIVABLE_CUSTOMER = 41048
MISSING_WELCOME_CODE = 41049
WELCOME_CODE_INVALID = 41050  # unknown or older than 20 s
WELCOME_CODE_USED = 41051  # doc 90313 words it "customer and member already chatting"; same effect
INVALID_ATTACHMENT_TYPE = 41065
TOKEN_EXPIRED = 42001
EMPTY_TEXT = 44004
CONTENT_TOO_LONG = 45002
FREQUENCY_LIMIT = 45009
BAD_JSON = 47001  # *unconfirmed*: WeCom adds "Warning: wrong json format." to errmsg
NO_RELATION = 84061  # *unconfirmed*: mark_tag on a customer who is not this member's friend
INVALID_OPEN_KFID = 95000  # *unconfirmed*: recalled as "invalid open_kfid", not verified here
KF_SEND_COUNT_EXCEEDED = 95001  # *unconfirmed*: a 6th message within the 48 h window
KF_SEND_WINDOW_CLOSED = 95002  # *unconfirmed*: more than 48 h since the customer's last message
INVALID_KF_SYNC_TOKEN = 95007  # *unconfirmed*: recalled as "invalid msg token", not verified here

MAX_ATTACHMENTS = 9
MSGID_PATTERN = re.compile(r"[0-9a-zA-Z_-]{1,32}")
ATTACHMENT_TYPES = frozenset({"image", "link", "miniprogram", "video", "file"})


class ApiError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class Call:
    """One API request as a handler sees it: JSON body and query merged, plus who is calling."""

    path: str
    params: dict[str, Any]
    app: str | None  # which secret's token ("app", "contact", "kf"); None for gettoken
    base_url: str


Handler = Callable[["EmulatorState", Call], dict]
API: dict[str, Handler] = {}


def api(path: str) -> Callable[[Handler], Handler]:
    """Register a handler for `/cgi-bin/<path>`."""

    def register(handler: Handler) -> Handler:
        API[path] = handler
        return handler

    return register


def required(params: dict, name: str, errcode: int = INVALID_PARAMETER):
    value = params.get(name)
    if value in (None, "", []):
        raise ApiError(errcode, f"missing {name}")
    return value


def check_text(text: Any, max_bytes: int, *, name: str = "text") -> str | None:
    """A `{"content": …}` object within `max_bytes` of UTF-8 (WeCom counts bytes, not characters)."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise ApiError(INVALID_PARAMETER, f"{name} must be an object")
    content = text.get("content") or ""
    if len(content.encode()) > max_bytes:
        raise ApiError(CONTENT_TOO_LONG, f"{name}.content exceeds {max_bytes} bytes")
    return content


def check_attachments(attachments: Any) -> list[dict]:
    attachments = attachments or []
    if not isinstance(attachments, list):
        raise ApiError(INVALID_PARAMETER, "attachments must be a list")
    if len(attachments) > MAX_ATTACHMENTS:
        raise ApiError(INVALID_PARAMETER, f"at most {MAX_ATTACHMENTS} attachments")
    for item in attachments:
        if not isinstance(item, dict) or item.get("msgtype") not in ATTACHMENT_TYPES:
            raise ApiError(INVALID_ATTACHMENT_TYPE, "invalid attachment msgtype")
    return attachments


def check_member(state: EmulatorState, userid: Any) -> str:
    if not isinstance(userid, str) or userid not in state.members:
        raise ApiError(INVALID_USERID, f"invalid userid {userid!r}")
    return userid


def page(items: list, params: dict, *, default: int, maximum: int) -> tuple[list, str]:
    """Cursor paging: the cursor is an opaque offset string; returns (items, next_cursor or "")."""
    limit = params.get("limit") or default
    if not isinstance(limit, int) or not 0 < limit <= maximum:
        raise ApiError(INVALID_PARAMETER, f"limit must be 1..{maximum}")
    cursor = params.get("cursor") or "0"
    if not str(cursor).isdigit():
        raise ApiError(INVALID_PARAMETER, "invalid cursor")
    start = int(cursor)
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else "")
