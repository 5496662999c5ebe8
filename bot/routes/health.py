"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.keys import METRICS, SERVICES
from handlers.logistics.stats import EPOCH, logistics_stats
from storage.repositories.leases import LeaseRepository

routes = web.RouteTableDef()
READY_PROBE = "readyz"


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        # A write that is committed, not a SELECT: a read-only file, a full disk or a
        # read-only replica answers a SELECT, and the app could still accept nothing.
        async with svc.tx() as tx:
            await LeaseRepository(tx.session).take(READY_PROBE, READY_PROBE, now=tx.now, ttl_s=0)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"not writable: {type(exc).__name__}"
    try:
        await svc.coord.ping()
        checks["redis" if svc.settings.redis.url else "coordination"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    async with request.app[SERVICES].tx() as tx:
        depth = await tx.outbox.depth()
        pending = await tx.events.pending_count()
        m.observe_logistics(await logistics_stats(tx, EPOCH, tx.after(days=1)))
    for state in ("pending", "dead"):
        m.outbox_depth.labels(state).set(depth.get(state, 0))
    m.events_pending.set(pending)
    return web.Response(
        body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
