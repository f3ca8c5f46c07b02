from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services import Services


class Priority(IntEnum):
    """Higher runs first; a job kind declares its priority once, with @tasks."""

    URGENT = 100  # a welcome code dies 20 s after the add
    REPLY = 20  # a customer or guide is waiting for our answer: ahead of the events still queued
    HIGH = 10  # the inbox dispatch
    OUTREACH = 5  # creating WeCom group-send tasks: behind the inbox, ahead of routine work
    NORMAL = 0
    LOW = -10  # nightly housekeeping, tallies, retention


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
    # Queued jobs whose work this run did (e.g. a fallback queued in its transaction): when it ends
    # done, they end done in the same UPDATE, unless a worker took them meanwhile.
    also_done: list[int] = field(default_factory=list)


JobFunction = Callable[[JobContext, dict], Awaitable[Any]]
# payload -> epoch seconds after which running the job is pointless (it ends `expired`), or None.
Deadline = Callable[[dict], "float | None"]
# Called with the payload when a job of the kind ends `expired` (e.g. to count welcome codes lost).
OnExpired = Callable[[dict], None]


@dataclass(frozen=True)
class JobOptions:
    """What a job kind declares once, where it is defined (enqueue and the runner read it here)."""

    priority: Priority = Priority.NORMAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # one run; a hung call must not hold its lease forever
    deadline: Deadline | None = None
    on_expired: OnExpired | None = None
    # Its database work is a few short indexed statements (per event, not per table): on SQLite
    # they run on the event loop's thread, without a trip to aiosqlite's thread each. A job that
    # scans or writes many rows must not say so: its statements would hold up the loop.
    quick: bool = False
    # Its dedupe key keeps a second job out only while it is queued: the claim clears it, so work
    # that arrives while it runs (which it may have missed) queues another job.
    key_released_at_start: bool = False


DEFAULT_OPTIONS = JobOptions()


@dataclass(frozen=True)
class JobDeclaration:
    """What `@tasks(kind, ...)` attaches to the function it decorates."""

    kind: str
    options: JobOptions


def declaration_of(function: JobFunction) -> JobDeclaration:
    declared = getattr(function, "job", None)
    if not isinstance(declared, JobDeclaration):
        raise TypeError(f"{function!r} is not declared as a job (decorate it with @tasks(kind, ...))")
    return declared


class TaskRegistry:
    """Job kinds → coroutine functions and their options.

    `@tasks(kind, priority=..., ...)` only *declares*: it attaches the kind and options to the
    function. A feature lists its job functions; the app's composition (bot/features.py) installs
    them with `tasks.install(...)`, and the runner and `job_row` look kinds up here.
    """

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}
        self._options: dict[str, JobOptions] = {}

    def __call__(
        self,
        kind: str,
        *,
        priority: Priority = Priority.NORMAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        deadline: Deadline | None = None,
        on_expired: OnExpired | None = None,
        quick: bool = False,
        key_released_at_start: bool = False,
    ) -> Callable[[JobFunction], JobFunction]:
        if max_attempts < 1 or timeout <= 0:
            raise ValueError(f"job kind {kind!r}: max_attempts must be >= 1 and timeout > 0")
        declared = JobDeclaration(kind, JobOptions(priority=Priority(priority), max_attempts=max_attempts,
                                                   timeout=timeout, deadline=deadline, on_expired=on_expired,
                                                   quick=quick, key_released_at_start=key_released_at_start))

        def declare(function: JobFunction) -> JobFunction:
            function.job = declared  # type: ignore[attr-defined]
            return function

        return declare

    def install(self, functions: Iterable[JobFunction]) -> None:
        """Make declared job functions runnable in this process (the composition calls this)."""
        for function in functions:
            declared = declaration_of(function)
            if self._functions.get(declared.kind, function) is not function:
                raise ValueError(f"job kind {declared.kind!r} declared twice")
            self._functions[declared.kind] = function
            self._options[declared.kind] = declared.options

    def get(self, kind: str) -> JobFunction | None:
        return self._functions.get(kind)

    def options(self, kind: str) -> JobOptions:
        """The kind's declared options (defaults for a kind not installed in this process)."""
        return self._options.get(kind, DEFAULT_OPTIONS)

    def kinds(self) -> list[str]:
        return sorted(self._functions)


tasks = TaskRegistry()


def declared_jobs(*modules: ModuleType) -> list[JobFunction]:
    """The job functions declared in these modules (with @tasks), in the order they are defined."""
    return [value for module in modules for value in vars(module).values()
            if isinstance(getattr(value, "job", None), JobDeclaration)
            and getattr(value, "__module__", None) == module.__name__]
