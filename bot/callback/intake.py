"""cleanup_ctx step of a web process that takes callbacks: its inbox writer, with the jobs the
routers declared `at_intake` (the callback views and the spool drainer write through it)."""

from __future__ import annotations

from aiohttp import web

from bot.callback.inbox import InboxWriter
from bot.services import SERVICES


async def callback_inbox(app: web.Application):
    services = app[SERVICES]
    dispatcher = services.dispatcher
    services.inbox = InboxWriter(services.db, intake=dispatcher.intake_jobs(), coalesce=dispatcher.coalesce_keys())
    yield
