"""EmulatorState: the emulated corp's world, its switches for tests, and the record of what happened."""

from __future__ import annotations

import secrets as random_ids
import time
from collections import deque
from collections.abc import Callable

from bot.config import EMULATOR_AGENT_ID, EMULATOR_CORP_ID, EMULATOR_SECRET

from .api_base import (
    FREQUENCY_LIMIT,
    INVALID_TOKEN,
    MISSING_TOKEN,
    TOKEN_EXPIRED,
    ApiError,
)
from .world import (
    Clock,
    Customer,
    Fault,
    Follow,
    GroupSend,
    IssuedToken,
    KfWindow,
    Member,
    OneTimeCode,
    Tag,
    TagGroup,
    Transfer,
)

TOKEN_TTL = 7200
CODE_TTL = 20  # welcome codes, customer contact and 微信客服 alike
KF_SYNC_TOKEN_TTL = 600
KF_WINDOW = 48 * 3600
KF_MESSAGES_PER_WINDOW = 5
TRANSFER_DELAY = 24 * 3600
CHINA_UTC_OFFSET = 8 * 3600


def new_id(prefix: str, nbytes: int = 12) -> str:
    return prefix + random_ids.token_hex(nbytes)


class EmulatorState:
    """Everything the emulator knows. Seed it with the add_* methods or the /emulator HTTP endpoints."""

    def __init__(
        self,
        *,
        corp_id: str = EMULATOR_CORP_ID,
        agent_id: int = EMULATOR_AGENT_ID,
        secrets: dict[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        group_send_cap_per_month: int = 4,
        record_limit: int = 20_000,
    ):
        self.corp_id = corp_id
        self.agent_id = agent_id
        # Secret per app name; a token remembers which one it was issued for.
        self.secrets = secrets or {"app": EMULATOR_SECRET, "contact": EMULATOR_SECRET, "kf": EMULATOR_SECRET}
        self.clock = clock or Clock()
        self.group_send_cap_per_month = group_send_cap_per_month
        self.app_messages_per_member_per_minute = 30
        self.callback_url: str | None = None

        # Switches for tests.
        self.rate_limit_per_minute: int | None = None
        self.faults: list[Fault] = []
        self.kf_empty_pages = 0  # answer this many sync_msg calls with an empty page and has_more=1
        self.transfer_refusers: set[str] = set()  # customers who will refuse a handover

        self.tokens: dict[str, IssuedToken] = {}
        self.members: dict[str, Member] = {}
        self.customers: dict[str, Customer] = {}
        self.tag_groups: dict[str, TagGroup] = {}
        self.tags: dict[str, Tag] = {}
        self.contact_ways: dict[str, dict] = {}
        self.welcome_codes: dict[str, OneTimeCode] = {}
        self.kf_accounts: dict[str, str] = {}
        self.kf_messages: dict[str, list[dict]] = {}
        self.kf_sync_tokens: dict[str, float] = {}
        self.kf_windows: dict[tuple[str, str], KfWindow] = {}
        self.kf_sent_msgids: set[tuple[str, str]] = set()
        self.group_sends: dict[str, GroupSend] = {}
        self.group_send_ledger: dict[tuple[str, str], int] = {}  # (external_userid, month) -> received
        # The admin may instead cap a customer per day or per week (doc 92135); None: not set.
        self.group_send_cap_per_day: int | None = None
        self.group_send_cap_per_week: int | None = None
        self.group_send_received: dict[str, list[float]] = {}  # external_userid -> when they received
        self.transfers: list[Transfer] = []
        self.card_responses: dict[str, dict] = {}  # ResponseCode → {userid, task_id, issued, used}
        self._counters: dict[tuple, int] = {}

        self.calls: deque[dict] = deque(maxlen=record_limit)
        self.outbox: deque[dict] = deque(maxlen=record_limit)
        self.callbacks: deque[dict] = deque(maxlen=record_limit)

    def now(self) -> int:
        return int(self.clock())

    def month(self) -> str:
        """The calendar month in China time, the period of the per-customer group-send cap."""
        return time.strftime("%Y-%m", time.gmtime(self.clock() + CHINA_UTC_OFFSET))

    def over_group_send_cap(self, external_userid: str) -> bool:
        """The customer already received as many company group sends as the admin allows."""
        if self.group_send_ledger.get((external_userid, self.month()), 0) >= self.group_send_cap_per_month:
            return True
        received = self.group_send_received.get(external_userid, [])
        local = time.gmtime(self.clock() + CHINA_UTC_OFFSET)
        day = time.strftime("%Y-%m-%d", local)
        week = time.strftime("%G-%V", local)
        for cap, period, fmt in ((self.group_send_cap_per_day, day, "%Y-%m-%d"),
                                 (self.group_send_cap_per_week, week, "%G-%V")):
            if cap is not None and sum(
                    time.strftime(fmt, time.gmtime(at + CHINA_UTC_OFFSET)) == period for at in received) >= cap:
                return True
        return False

    def record_group_send_received(self, external_userid: str) -> None:
        key = (external_userid, self.month())
        self.group_send_ledger[key] = self.group_send_ledger.get(key, 0) + 1
        self.group_send_received.setdefault(external_userid, []).append(self.clock())

    # Seeding

    def add_member(self, userid: str, name: str | None = None, *, resigned: bool = False) -> Member:
        member = self.members[userid] = Member(userid, name or userid, resigned)
        return member

    def add_customer(
        self,
        external_userid: str,
        name: str | None = None,
        *,
        unionid: str = "",
        gender: int = 0,
        follow: str | None = None,
        state: str = "",
    ) -> Customer:
        customer = self.customers.get(external_userid)
        if customer is None:
            customer = Customer(external_userid, name or external_userid, unionid, gender)
            self.customers[external_userid] = customer
        if follow:
            self.befriend(external_userid, follow, state=state)
        return customer

    def befriend(self, external_userid: str, userid: str, *, state: str = "") -> Follow:
        if userid not in self.members:
            self.add_member(userid)
        customer = self.customers.get(external_userid) or self.add_customer(external_userid)
        follow = customer.follows[userid] = Follow(userid, self.now(), state or "")
        return follow

    def add_kf_account(self, open_kfid: str, name: str | None = None) -> None:
        self.kf_accounts[open_kfid] = name or open_kfid
        self.kf_messages.setdefault(open_kfid, [])

    def add_corp_tag(self, name: str, group_name: str = "默认") -> Tag:
        group = next((g for g in self.tag_groups.values() if g.group_name == group_name), None)
        if group is None:
            group = TagGroup(new_id("eg", 8), group_name, self.now())
            self.tag_groups[group.group_id] = group
        tag = Tag(new_id("et", 8), name, group.group_id, self.now())
        self.tags[tag.id] = tag
        return tag

    # Switches

    def expire_tokens(self) -> None:
        """WeCom may invalidate tokens early: every token issued so far now answers 42001."""
        for issued in self.tokens.values():
            issued.expires_at = min(issued.expires_at, self.clock())

    def fail_next(self, errcode: int, times: int = 1, *, path: str | None = None, delay: float = 0.0) -> None:
        self.faults.append(Fault(errcode, times, path, delay))

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path == path or (fault.path is None and path != "gettoken"):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def count_call(self, path: str) -> None:
        if self.rate_limit_per_minute is None:
            return
        key = ("rate", path, int(self.clock() // 60))
        self._counters[key] = self._counters.get(key, 0) + 1
        if self._counters[key] > self.rate_limit_per_minute:
            raise ApiError(FREQUENCY_LIMIT, "api freq out of limit")

    def count_app_message(self, userid: str) -> bool:
        """False when the member already got their 30 app messages this minute."""
        key = ("app_message", userid, int(self.clock() // 60))
        self._counters[key] = self._counters.get(key, 0) + 1
        return self._counters[key] <= self.app_messages_per_member_per_minute

    # Tokens and codes

    def issue_token(self, app: str) -> tuple[str, int]:
        now = self.clock()
        # Like WeCom: asking again within the validity returns the same token.
        for token, issued in self.tokens.items():
            if issued.app == app and issued.expires_at > now:
                return token, int(issued.expires_at - now)
        token = new_id("emu-token-", 24)
        self.tokens[token] = IssuedToken(app, now + TOKEN_TTL)
        return token, TOKEN_TTL

    def check_token(self, token: str | None) -> str:
        """The app name the token belongs to, or the errcode WeCom would give."""
        if not token:
            raise ApiError(MISSING_TOKEN, "access_token missing")
        issued = self.tokens.get(token)
        if issued is None:
            raise ApiError(INVALID_TOKEN, "invalid access_token")
        if issued.expires_at <= self.clock():
            raise ApiError(TOKEN_EXPIRED, "access_token expired")
        return issued.app

    def issue_welcome_code(self, userid: str, external_userid: str) -> str:
        code = new_id("wc-", 16)
        self.welcome_codes[code] = OneTimeCode(code, external_userid, self.clock() + CODE_TTL, userid=userid)
        return code

    def issue_kf_welcome_code(self, open_kfid: str, external_userid: str) -> str:
        code = new_id("kfwc-", 16)
        self.welcome_codes[code] = OneTimeCode(
            code, external_userid, self.clock() + CODE_TTL, open_kfid=open_kfid
        )
        return code

    def issue_kf_sync_token(self) -> str:
        token = new_id("kfsync-", 16)
        self.kf_sync_tokens[token] = self.clock() + KF_SYNC_TOKEN_TTL
        return token

    def queue_kf_message(self, open_kfid: str, message: dict) -> dict:
        message = {"msgid": new_id("kfmsg-", 12), "open_kfid": open_kfid, "send_time": self.now(), **message}
        self.kf_messages.setdefault(open_kfid, []).append(message)
        if message.get("origin") == 3:
            # A customer's message opens a fresh window: 48 h and 5 messages from now.
            self.kf_windows[(open_kfid, message["external_userid"])] = KfWindow(self.clock())
        return message

    # Handovers take effect 24 h later (unless the customer refuses).

    def settle_transfers(self) -> None:
        now = self.clock()
        for transfer in self.transfers:
            if transfer.status != "waiting" or transfer.effective_at > now:
                continue
            customer = self.customers.get(transfer.external_userid)
            follow = customer.follows.pop(transfer.handover_userid, None) if customer else None
            if follow is None or transfer.external_userid in self.transfer_refusers:
                transfer.status = "customer_refused"
                if follow is not None:
                    customer.follows[transfer.handover_userid] = follow
                continue
            follow.userid = transfer.takeover_userid
            customer.follows[transfer.takeover_userid] = follow
            transfer.status = "success"

    # Records

    def record_call(self, **entry) -> None:
        self.calls.append({"time": self.now(), **entry})

    def deliver(self, channel: str, **message) -> dict:
        """Something reached a customer or a guide: keep it where tests and people can read it."""
        entry = {"channel": channel, "time": self.now(), **message}
        self.outbox.append(entry)
        return entry

    def calls_to(self, path: str) -> list[dict]:
        return [call for call in self.calls if call["path"] == path]
