"""Reply shapes for 微信客服 (text and msgmenu) and the sentences shared by the answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.config import corp_zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = dict(zip(WEEKDAYS, ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))

MAIN_MENU = [("menu:points", "查积分"), ("menu:coupons", "我的券"), ("menu:mall", "积分商城"),
             ("menu:guide", "我的导购和门店")]


@dataclass(frozen=True)
class Reply:
    msgtype: str  # text | msgmenu
    body: dict = field(default_factory=dict)

    def payload(self) -> dict:
        return {"msgtype": self.msgtype, self.msgtype: self.body}


def text(content: str) -> Reply:
    return Reply("text", {"content": content})


def menu(head: str, items: list[tuple[str, str]], tail: str = "") -> Reply:
    body = {"head_content": head, "list": [{"type": "click", "click": {"id": item_id, "content": label}}
                                           for item_id, label in items]}
    if tail:
        body["tail_content"] = tail
    return Reply("msgmenu", body)


def help_menu(head: str = "您好，我是门店小助手，可以帮您：") -> Reply:
    return menu(head, MAIN_MENU, "也可以直接打字问我，比如「我还有多少积分」「我有什么券」。")


def day(moment: dt.datetime) -> str:
    return f"{moment.astimezone(corp_zone()):%Y年%m月%d日}"


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def opening_hours(hours: dict | None) -> str:
    """{"mon": ["10:00-22:00"], …} → 「每天 10:00-22:00」 or 「周一 …；周二 休息…」 (None: always open)."""
    if hours is None:
        return "全天营业"
    spans = {name: "、".join(hours.get(name) or []) or "休息" for name in WEEKDAYS}
    if len(set(spans.values())) == 1:
        return f"每天 {spans['mon']}" if spans["mon"] != "休息" else "暂停营业"
    return "；".join(f"{WEEKDAY_NAMES[name]} {span}" for name, span in spans.items())
