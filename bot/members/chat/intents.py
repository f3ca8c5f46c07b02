"""What a customer's message asks for, in everyday Chinese with typos, spaces and full-width chars.

The text is NFKC-normalised (full-width → half-width), lower-cased and stripped of spaces and
punctuation; then the first intent whose pattern matches wins, most specific first (a question
about the points *mall* mentions 积分 too, so it is tried before the balance).
"""

from __future__ import annotations

import re
import unicodedata

INTENTS = ("points", "coupons", "mall", "guide", "help", "join")

PATTERNS: list[tuple[str, re.Pattern]] = [
    ("mall", re.compile(r"商城|兑换|兑奖|换券|换卷|(积|机|鸡)(分|份|粉).{0,4}(换|兑|买)|用(积|机)(分|份)|jifenshangcheng|mall")),
    ("join", re.compile(r"入会|注册|(加入|成为|办|开通?|申请).{0,2}会员|办卡|开卡|怎么加入|joinus|^join")),
    ("coupons", re.compile(r"券|卷|优惠|代金|折扣|红包|卡包|youhuiquan|coupon")),
    ("points", re.compile(r"积分|积份|积粉|机分|鸡分|基分|几分|多少分|剩.{0,2}分|分数|余额|我的分|jifen|point")),
    ("guide", re.compile(r"导购|顾问|店员|门店|店铺|店址|实体店|你们店|店在|地址|在哪|哪里|位置|营业|几点|开门|关门|"
                         r"上班时间|专属|联系人|guide|store")),
    ("help", re.compile(r"帮助|菜单|help|怎么用|功能|能做什么|你好|您好|^hi$|^hello$|在吗|人工|^\?+$")),
]

CONFIRM_WORDS = frozenset({"确认", "确定", "确认兑换", "是", "是的", "好", "好的", "可以", "ok", "okay", "yes", "y"})
CANCEL_WORDS = frozenset({"取消", "不", "不要", "不用", "算了", "no", "n"})


def normalise(text: str) -> str:
    """「 我还有 多少 積分？」 → 「我还有多少積分」: NFKC, lower case, no spaces or punctuation."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZC")


# Traditional characters a customer may type, folded to simplified before matching.
TRADITIONAL = str.maketrans({"積": "积", "個": "个", "優": "优", "惠": "惠", "劵": "券", "換": "换",
                             "導": "导", "購": "购", "門": "门", "餘": "余", "額": "额", "幫": "帮",
                             "員": "员", "會": "会", "嗎": "吗", "營": "营", "業": "业", "時": "时", "間": "间"})


def classify(text: str | None, menu_id: str | None = None) -> tuple[str, str]:
    """(intent, argument). Menu taps carry their meaning in `menu_id`: `menu:points`, `mall:CODE`…"""
    if menu_id:
        kind, _, argument = menu_id.partition(":")
        if kind == "menu" and argument in INTENTS:
            return argument, ""
        if kind in ("mall", "mallok"):
            return ("mall_item" if kind == "mall" else "mall_confirm"), argument
        if kind == "mallno":
            return "mall_cancel", ""
    words = normalise(text or "").translate(TRADITIONAL)
    if not words:
        return "unknown", ""
    if words in CONFIRM_WORDS:
        return "confirm_word", ""
    if words in CANCEL_WORDS:
        return "mall_cancel", ""
    for intent, pattern in PATTERNS:
        if pattern.search(words):
            return intent, ""
    return "unknown", ""
