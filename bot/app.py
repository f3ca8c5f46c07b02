"""create_app(settings) -> web.Application: routes, middlewares, and resources in cleanup_ctx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiohttp import web

from bot.api.errors import error_middleware, request_context
from bot.config import Settings
from bot.jobs import JobRunner
from bot.services import SERVICES, open_services
from bot.wiring import Wiring

log = logging.getLogger("bot")


def create_app(settings: Settings, *, run_jobs: bool = True, migrate: bool | None = None,
               wiring: Wiring | None = None, configs: Iterable[object] = ()) -> web.Application:
    """The web app serving `wiring`'s features (default: all of them, bot/features.py); with
    run_jobs the job runner works inside this process (embedded default). `configs` replace
    features' settings read from the environment (tests give their own)."""
    from bot import ops
    from bot.api.auth import SIGN_IN
    from bot.api.spec import API_OPERATIONS, declared_route, route_table
    from bot.callback.intake import callback_inbox
    from bot.callback.spool import callback_spool
    from bot.callback.views import routes as callback_routes
    from bot.features import wiring as all_features

    wiring = wiring or all_features()
    app = web.Application(middlewares=[request_context, error_middleware], client_max_size=2 * 1024 * 1024)
    app[API_OPERATIONS] = [declared_route(function).operation for function in wiring.routes]
    if wiring.sign_in is not None:
        app[SIGN_IN] = wiring.sign_in

    async def resources(app: web.Application):
        async with open_services(settings, wiring=wiring, migrate=migrate, configs=configs) as services:
            app[SERVICES] = services
            runner_task = None
            if run_jobs:
                services.runner = JobRunner(
                    services,
                    concurrency=settings.job_concurrency,
                    lease_seconds=settings.job_lease_seconds,
                    poll_seconds=settings.job_poll_seconds,
                )
                runner_task = asyncio.create_task(services.runner.run(), name="job-runner")
            yield
            if runner_task is not None:
                services.runner.stop()
                await runner_task

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(callback_inbox)  # after resources: the inbox writes to their database
    app.cleanup_ctx.append(callback_spool)  # after the inbox: it drains into it
    app.add_routes(callback_routes)
    app.add_routes(ops.routes)
    app.add_routes(route_table(wiring.routes))
    for setup_pages in wiring.pages:
        setup_pages(app)
    return app
