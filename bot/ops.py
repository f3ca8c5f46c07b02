"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.api.spec import API_OPERATIONS, openapi_document
from bot.callback.spool import SPOOL
from bot.metrics import QUEUE_DEPTH, REGISTRY
from bot.services import SERVICES
from bot.storage.models import Job

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 while this process can take callbacks. A database outage alone does not take it out of
    rotation: the database is shared, so every process would go out at once and WeCom's callbacks
    would meet the load balancer's 502; the local spool keeps them instead ("degraded")."""
    services = request.app[SERVICES]
    checks = {"database": await services.db.ping(), "kv": await services.kv.ping()}
    spool = request.app.get(SPOOL)
    body: dict = {"checks": {name: "ok" if ok else "down" for name, ok in checks.items()},
                  "kv_backend": services.kv.name}
    spool_ok = False
    if spool is not None:
        try:
            body["spool"] = {"pending": await spool.pending()}
        except Exception:
            body["spool"] = {"pending": None}
        if not checks["database"]:  # the spool file is only created when it is needed
            spool_ok = body["spool"]["writable"] = body["spool"]["pending"] is not None and await spool.writable()
    if all(checks.values()):
        status = "ready"
    elif checks["kv"] and spool_ok:
        status = "degraded"
    else:
        status = "unavailable"
    body["status"] = status
    return web.json_response(body, status=503 if status == "unavailable" else 200)


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
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[API_OPERATIONS], "WeCom store-guide assistant", "1"))
