"""The things that exist in the emulated corp, as plain dataclasses, and the emulator's clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class Clock:
    """Wall-clock seconds plus an offset; give `start` to freeze it. `advance` jumps ahead (tests, curl)."""

    def __init__(self, start: float | None = None):
        self._frozen_at = start
        self._offset = 0.0

    def __call__(self) -> float:
        base = self._frozen_at if self._frozen_at is not None else time.time()
        return base + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


@dataclass
class Member:
    """A guide (企业成员)."""

    userid: str
    name: str
    resigned: bool = False
    # A welcome message set in the admin console: WeCom then issues no welcome code for this member.
    console_welcome: bool = False


@dataclass
class Follow:
    """One member's side of a customer relation (follow_user / follow_info)."""

    userid: str
    add_time: int
    state: str = ""
    remark: str = ""
    tag_ids: set[str] = field(default_factory=set)


@dataclass
class Customer:
    """An external contact (客户) and the members who have them as a friend."""

    external_userid: str
    name: str
    unionid: str = ""
    gender: int = 0
    type: int = 1  # 1 WeChat user, 2 WeCom user
    follows: dict[str, Follow] = field(default_factory=dict)

    def profile(self) -> dict:
        return {
            "external_userid": self.external_userid,
            "name": self.name,
            "type": self.type,
            "avatar": f"https://emulator.invalid/avatar/{self.external_userid}.png",
            "gender": self.gender,
            "unionid": self.unionid,
        }


@dataclass
class TagGroup:
    group_id: str
    group_name: str
    create_time: int
    order: int = 0


@dataclass
class Tag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0


@dataclass
class OneTimeCode:
    """A welcome code (customer contact or 微信客服 enter_session): valid 20 s, usable once."""

    code: str
    external_userid: str
    expires_at: float
    userid: str = ""
    open_kfid: str = ""
    used: bool = False


@dataclass
class IssuedToken:
    app: str
    expires_at: float


@dataclass
class KfWindow:
    """What a 微信客服 account may still send a customer: 48 h since their last message, 5 messages."""

    last_customer_message: float
    sent: int = 0


@dataclass
class SendTask:
    """One member's share of a group send; nothing reaches customers until the member confirms."""

    userid: str
    results: dict[str, dict]  # external_userid -> {"status": 0|1|2|3, "send_time": int}
    status: int = 0  # 0 not sent, 2 sent (WeCom's get_groupmsg_task values)
    send_time: int = 0
    reminders: list[float] = field(default_factory=list)


@dataclass
class GroupSend:
    msgid: str
    chat_type: str
    create_time: int
    creator: str
    text: dict | None
    attachments: list[dict]
    tasks: dict[str, SendTask] = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class Transfer:
    """A handover waiting for WeCom's 24 h; `status` becomes success or customer_refused."""

    handover_userid: str
    takeover_userid: str
    external_userid: str
    effective_at: float
    status: str = "waiting"


@dataclass
class Fault:
    """Answer the next `times` calls (to `path`, or any path but gettoken) with `errcode`.

    errcode 0 with a `delay` carries the call out and answers late: a lost-answer timeout.
    """

    errcode: int
    times: int = 1
    path: str | None = None
    delay: float = 0.0
