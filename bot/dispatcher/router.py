from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.dispatcher.context import EventContext
from bot.dispatcher.filters import FieldFilter, build_filters
from bot.wecom.events import InboundEvent

Handler = Callable[[EventContext], Awaitable[Any]]
# At intake, with the inbox row: event -> a job row (bot.jobs.job_row) or None. For work that cannot
# wait for the event's turn in the dispatch queue (a welcome code dies 20 s after the add).
IntakeJob = Callable[[InboundEvent], "dict | None"]
# event -> the key of the events that one run of their handler takes care of together, or None.
# E.g. a 微信客服 account: any sync of its messages reads what every earlier callback announced.
CoalesceKey = Callable[[InboundEvent], "str | None"]
Middleware = Callable[[Handler, EventContext], Awaitable[Any]]


@dataclass(frozen=True)
class Registration:
    handler: Handler
    filters: tuple[FieldFilter, ...]

    def matches(self, ctx: EventContext) -> bool:
        return all(check(ctx.event) for check in self.filters)


class Router:
    """One per feature module; the first registered handler whose filters all pass runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Registration] = []
        self._children: list[Router] = []
        self._intake: list[IntakeJob] = []
        self._coalesce: list[CoalesceKey] = []

    def on(self, **criteria) -> Callable[[Handler], Handler]:
        """Register a handler: `@router.on(event="change_external_contact", change_type=...)`."""
        filters = build_filters(**criteria)

        def register(handler: Handler) -> Handler:
            self._handlers.append(Registration(handler, filters))
            return handler

        return register

    def at_intake(self, job: IntakeJob) -> IntakeJob:
        """Declare a job written with the inbox row of the events it returns a row for."""
        self._intake.append(job)
        return job

    def intake_jobs(self) -> list[IntakeJob]:
        return [*self._intake, *(job for child in self._children for job in child.intake_jobs())]

    def coalesce(self, key_of: CoalesceKey) -> CoalesceKey:
        """Declare events that are handled together: all pending events of one key are dispatched
        by one job, which runs the handler once, for the newest (bot/callback/inbox.py)."""
        self._coalesce.append(key_of)
        return key_of

    def coalesce_keys(self) -> list[CoalesceKey]:
        return [*self._coalesce, *(key for child in self._children for key in child.coalesce_keys())]

    def include_router(self, router: Router) -> Router:
        self._children.append(router)
        return router

    def find(self, ctx: EventContext) -> Handler | None:
        for registration in self._handlers:
            if registration.matches(ctx):
                return registration.handler
        for child in self._children:
            handler = child.find(ctx)
            if handler is not None:
                return handler
        return None


class Dispatcher(Router):
    """The root router; wraps the chosen handler in the middlewares, outermost first."""

    def __init__(self, middlewares: list[Middleware] | None = None) -> None:
        super().__init__("root")
        self.middlewares = list(middlewares or [])

    async def feed(self, ctx: EventContext) -> bool:
        """Run the matching handler; False when no handler wants this event."""
        handler = self.find(ctx)
        if handler is None:
            return False
        call: Handler = handler
        for middleware in reversed(self.middlewares):
            call = _wrap(middleware, call)
        await call(ctx)
        return True


def _wrap(middleware: Middleware, inner: Handler) -> Handler:
    async def wrapped(ctx: EventContext):
        return await middleware(inner, ctx)

    return wrapped
