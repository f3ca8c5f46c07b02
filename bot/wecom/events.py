"""Decrypted callback XML → a typed event with a deduplication identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import xmltodict
from wechatpy.work.parser import parse_message

from bot.wecom.crypto import CallbackRejected


class MalformedMessage(CallbackRejected):
    code = "malformed_xml"


def parse_xml(xml: str, root: str = "xml") -> dict:
    """Parse WeCom XML into a flat dict; entity declarations are refused by xmltodict."""
    try:
        document = xmltodict.parse(xml)
    except Exception as exc:  # ExpatError, ValueError("entities are disabled"), ...
        raise MalformedMessage(f"not well-formed XML: {exc}") from None
    body = document.get(root) if isinstance(document, dict) else None
    if not isinstance(body, dict):
        raise MalformedMessage(f"missing <{root}> element")
    return body


INT64_MAX = 2**63 - 1
# The inbox's dedup_key column is 80 characters; a longer MsgId is kept under its hash instead.
DEDUP_KEY_SIZE = 80


def is_int64_digits(value: object) -> bool:
    """ASCII digits that fit a BIGINT: `str.isdigit` also takes `²` and `①`, which int() refuses."""
    return (isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit()
            and int(value) <= INT64_MAX)


@dataclass(frozen=True)
class InboundEvent:
    """A message or event from WeCom, as the dispatcher sees it."""

    fields: dict = field(repr=False)
    plaintext: str = field(repr=False)

    @classmethod
    def from_xml(cls, plaintext: str) -> InboundEvent:
        fields = parse_xml(plaintext)
        if not isinstance(fields.get("MsgType"), str) or not fields["MsgType"]:
            raise MalformedMessage("MsgType is missing")
        if not is_int64_digits(fields.get("CreateTime")):
            raise MalformedMessage("CreateTime is missing or not a number of seconds")
        return cls(fields=fields, plaintext=plaintext)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) else None

    @property
    def msg_type(self) -> str:
        return self.fields["MsgType"].lower()

    @property
    def event(self) -> str | None:
        value = self.get("Event")
        return value.lower() if value else None

    @property
    def change_type(self) -> str | None:
        return self.get("ChangeType")

    @property
    def create_time(self) -> int:
        return int(self.fields["CreateTime"])

    @property
    def user_id(self) -> str | None:
        """The member (guide) concerned: UserID for contact events, the sender for app messages."""
        return self.get("UserID") or (self.get("FromUserName") if self.get("FromUserName") != "sys" else None)

    @property
    def external_user_id(self) -> str | None:
        return self.get("ExternalUserID")

    @property
    def content(self) -> str | None:
        return self.get("Content")

    @property
    def kind(self) -> str:
        """e.g. `text`, `event:click`, `event:change_external_contact:add_external_contact`."""
        parts = [self.msg_type, self.event, self.change_type]
        return ":".join(part for part in parts if part)

    @cached_property
    def dedup_key(self) -> str:
        """Same callback (WeCom's retries) → same key; two different callbacks never share one.

        Messages carry MsgId. Events do not, and customer-contact events all come from `sys`, so a
        FromUserName+CreateTime key merges two customers adding one guide in the same second. The
        key here covers every field of the event, so any difference keeps them apart.
        """
        msg_id = self.get("MsgId")
        if msg_id:
            key = "msg:" + msg_id
            # Hashing keeps "same MsgId, same key" for an id too long for the column (sha256: 69 chars).
            return key if len(key) <= DEDUP_KEY_SIZE else "msgh:" + hashlib.sha256(msg_id.encode()).hexdigest()
        canonical = repr(sorted((k, repr(v)) for k, v in self.fields.items()))
        return "evt:" + hashlib.sha256(canonical.encode()).hexdigest()

    @cached_property
    def typed(self):
        """wechatpy's typed message/event object (ChangeExternalContactEvent, TextMessage, ...)."""
        return parse_message(self.plaintext)
