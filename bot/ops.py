"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, literal_column, select

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


# Counted up to this many per status: each count walks that status's partial index only as far
# as the cap, so a scrape stays cheap however large the backlog ("at least 10,000" is the alert).
QUEUE_DEPTH_CAP = 10_000
_COUNTED_STATUSES = ("queued", "running", "dead")


def queue_depth_statement(status: str, cap: int = QUEUE_DEPTH_CAP):
    """How many jobs have `status`, at most `cap`. The status is a literal so the planner matches
    the partial index of that status (ix_jobs_queued, ix_jobs_running_lease, ix_jobs_dead)."""
    capped = select(literal_column("1")).select_from(Job).where(
        Job.status == literal_column(f"'{status}'")).limit(cap).subquery()
    return select(func.count()).select_from(capped)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        async with services.db.reading() as conn:
            for status in _COUNTED_STATUSES:
                QUEUE_DEPTH.labels(status).set(await conn.scalar(queue_depth_statement(status)))
    except Exception:
        pass  # metrics stay available when the DB is not; /readyz reports that
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[API_OPERATIONS], "WeCom store-guide assistant", "1"))
