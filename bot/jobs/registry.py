from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services import Services


class Retry(Exception):
    """Raise from a job to run it again after `defer` seconds without using up an attempt."""

    def __init__(self, defer: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {defer:.1f}s")
        self.defer = defer


@dataclass
class JobContext:
    services: Services
    job_id: int
    kind: str
    attempt: int


JobFunction = Callable[[JobContext, dict], Awaitable[Any]]


class TaskRegistry:
    """Job kinds → coroutine functions; features register theirs at import time."""

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}

    def __call__(self, kind: str) -> Callable[[JobFunction], JobFunction]:
        def register(function: JobFunction) -> JobFunction:
            if kind in self._functions and self._functions[kind] is not function:
                raise ValueError(f"job kind {kind!r} registered twice")
            self._functions[kind] = function
            return function

        return register

    def get(self, kind: str) -> JobFunction | None:
        return self._functions.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._functions)


tasks = TaskRegistry()
