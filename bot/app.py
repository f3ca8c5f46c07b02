"""create_app(settings) -> web.Application: routes, middlewares, and resources in cleanup_ctx."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.api.errors import error_middleware, request_context
from bot.config import Settings
from bot.jobs import JobRunner
from bot.services import SERVICES, open_services

log = logging.getLogger("bot")


def _load_features() -> None:
    """Import every module that registers API routes or job kinds."""
    import bot.api.operations  # noqa: F401
    import bot.callback.inbox  # noqa: F401
    import bot.customers.api  # noqa: F401
    import bot.members.api  # noqa: F401
    import bot.members.welcome  # noqa: F401
    import bot.stores.api  # noqa: F401
    import handlers  # noqa: F401
    import sop.engine.feature  # noqa: F401
    import sop.feature  # noqa: F401


def create_app(settings: Settings, *, run_jobs: bool = True, migrate: bool | None = None) -> web.Application:
    """The web app; with run_jobs the job runner works inside this process (embedded default)."""
    _load_features()
    from bot import ops
    from bot.api.spec import api
    from bot.callback.spool import callback_spool
    from bot.callback.views import routes as callback_routes
    from bot.console import views as console_views
    from bot.stores import web as stores_web

    app = web.Application(middlewares=[request_context, error_middleware], client_max_size=2 * 1024 * 1024)

    async def resources(app: web.Application):
        async with open_services(settings, migrate=migrate) as services:
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
    app.cleanup_ctx.append(callback_spool)  # after resources: it drains into their inbox
    app.add_routes(callback_routes)
    app.add_routes(ops.routes)
    app.add_routes(api.table)
    stores_web.setup_routes(app)
    console_views.setup_routes(app)  # /api/v1/session and the built console at /console/
    return app
