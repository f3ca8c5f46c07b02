"""Routes inbound WeCom events to handlers: routers per feature, filters as data, middlewares."""

from bot.dispatcher.context import EventContext
from bot.dispatcher.router import Dispatcher, Router

__all__ = ["Dispatcher", "EventContext", "Router"]
