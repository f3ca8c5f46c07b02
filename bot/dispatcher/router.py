from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.dispatcher.context import EventContext
from bot.dispatcher.filters import FieldFilter, build_filters

Handler = Callable[[EventContext], Awaitable[Any]]
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

    def on(self, **criteria) -> Callable[[Handler], Handler]:
        """Register a handler: `@router.on(event="change_external_contact", change_type=...)`."""
        filters = build_filters(**criteria)

        def register(handler: Handler) -> Handler:
            self._handlers.append(Registration(handler, filters))
            return handler

        return register

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
