"""Operators' endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from ..store.base import migration_files
from .state import KEYRING, STORAGE_TROUBLE, STORE, WORKER_COUNT, WORKERS_READY

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Says nothing about the database (that is /readyz)."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    checks: dict[str, bool] = {"database": await store.ping()}
    checks["keys"] = KEYRING in request.app and bool(request.app[KEYRING].signers)
    if checks["database"]:
        latest = max(v for v, _, _ in migration_files(store.dialect))
        checks["migrations"] = await store.schema_version() == latest
    else:
        checks["migrations"] = False
    checks["workers"] = request.app[WORKERS_READY]()
    trouble = request.app[STORAGE_TROUBLE].current()
    checks["storage"] = trouble is None  # no write refused lately: disk full, read-only
    ready = all(checks.values())
    answer: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    if trouble is not None:
        answer["storage"] = trouble.value
    return web.json_response(answer, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    from .. import metrics as prometheus

    store = request.app[STORE]
    figures = prometheus.StoreFigures(
        topics=await store.topic_counts(),
        alerts=await store.alert_status_counts(),
        work=await store.pending_work(),
        workers=request.app[WORKER_COUNT](),
    )
    body = prometheus.render(figures)
    return web.Response(body=body, headers={"Content-Type": prometheus.CONTENT_TYPE})
