from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services import Services


class Priority(IntEnum):
    """Higher runs first. URGENT: a welcome code dies 20 s after the add; HIGH: the inbox dispatch."""

    URGENT = 100
    HIGH = 10
    NORMAL = 0
    LOW = -10


DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_TIMEOUT_SECONDS = 300.0


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
# payload -> epoch seconds after which running the job is pointless (it ends `expired`), or None.
Deadline = Callable[[dict], "float | None"]
# Called with the payload when a job of the kind ends `expired` (e.g. to count welcome codes lost).
OnExpired = Callable[[dict], None]


@dataclass(frozen=True)
class JobOptions:
    """What a job kind declares once, where it is defined (enqueue and the runner read it here)."""

    priority: int = Priority.NORMAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # one run; a hung call must not hold its lease forever
    deadline: Deadline | None = None
    on_expired: OnExpired | None = None


DEFAULT_OPTIONS = JobOptions()


class TaskRegistry:
    """Job kinds → coroutine functions and their options; features register theirs at import time."""

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}
        self._options: dict[str, JobOptions] = {}

    def __call__(
        self,
        kind: str,
        *,
        priority: int = Priority.NORMAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        deadline: Deadline | None = None,
        on_expired: OnExpired | None = None,
    ) -> Callable[[JobFunction], JobFunction]:
        if max_attempts < 1 or timeout <= 0:
            raise ValueError(f"job kind {kind!r}: max_attempts must be >= 1 and timeout > 0")
        options = JobOptions(priority=int(priority), max_attempts=max_attempts, timeout=timeout, deadline=deadline,
                             on_expired=on_expired)

        def register(function: JobFunction) -> JobFunction:
            if kind in self._functions and self._functions[kind] is not function:
                raise ValueError(f"job kind {kind!r} registered twice")
            self._functions[kind] = function
            self._options[kind] = options
            return function

        return register

    def get(self, kind: str) -> JobFunction | None:
        return self._functions.get(kind)

    def options(self, kind: str) -> JobOptions:
        """The kind's declared options (defaults for a kind not registered in this process)."""
        return self._options.get(kind, DEFAULT_OPTIONS)

    def kinds(self) -> list[str]:
        return sorted(self._functions)


tasks = TaskRegistry()
