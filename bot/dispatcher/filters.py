"""Filters are data: field name → expected value, regex, or predicate."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.wecom.events import InboundEvent

# Filter keyword → how to read it from the event.
FIELDS: dict[str, Callable[[InboundEvent], str | None]] = {
    "msg_type": lambda e: e.msg_type,
    "event": lambda e: e.event,
    "change_type": lambda e: e.change_type,
    "content": lambda e: (e.content or "").strip(),
    "event_key": lambda e: e.get("EventKey"),
    "agent_id": lambda e: e.get("AgentID"),
}


@dataclass(frozen=True)
class FieldFilter:
    name: str
    expected: Any

    def __call__(self, event: InboundEvent) -> bool:
        actual = FIELDS[self.name](event)
        if isinstance(self.expected, re.Pattern):
            return actual is not None and self.expected.search(actual) is not None
        if callable(self.expected):
            return bool(self.expected(actual))
        if isinstance(self.expected, (set, frozenset, tuple, list)):
            return actual in self.expected
        return actual == self.expected


def build_filters(**criteria) -> tuple[FieldFilter, ...]:
    unknown = set(criteria) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown filter field(s): {', '.join(sorted(unknown))}")
    return tuple(FieldFilter(name, value) for name, value in criteria.items() if value is not None)
