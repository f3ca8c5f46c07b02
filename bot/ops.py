"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.api.spec import api, openapi_document
from bot.metrics import QUEUE_DEPTH, REGISTRY
from bot.services import SERVICES
from bot.storage.models import Job

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks = {"database": await services.db.ping(), "kv": await services.kv.ping()}
    ready = all(checks.values())
    return web.json_response(
        {"status": "ready" if ready else "unavailable",
         "checks": {name: "ok" if ok else "down" for name, ok in checks.items()},
         "kv_backend": services.kv.name},
        status=200 if ready else 503,
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        async with services.db.session() as session:
            counts = dict((await session.execute(
                select(Job.status, func.count()).where(Job.status.in_(("queued", "running", "dead")))
                .group_by(Job.status)
            )).all())
        for status in ("queued", "running", "dead"):
            QUEUE_DEPTH.labels(status).set(counts.get(status, 0))
    except Exception:
        pass  # metrics stay available when the DB is not; /readyz reports that
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/v1/openapi.json")
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document(api.operations, "WeCom store-guide assistant", "1"))
