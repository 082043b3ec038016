"""Operations: liveness, readiness, each dependency's health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.server.checks import Report, readiness
from app.server.deps import ServicesDep
from app.server.errors import SERVER_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["operations"], responses=SERVER_RESPONSES)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _report(services: ServicesDep) -> dict[str, Any]:
    started = time.perf_counter()
    report: Report = await asyncio.wait_for(readiness(services), timeout=10)
    return {
        "status": report.status,
        "checks": report.checks,
        "blocking": report.blocking,
        "degraded": report.degraded,
        "seconds": round(time.perf_counter() - started, 3),
    }


@router.get("/readyz", summary="Readiness: this process can serve", response_model=None)
async def readyz(services: ServicesDep) -> Any:
    """200 while requests can be served (``degraded`` names what they are served without).

    503 when a dependency no request can do without is down: the checkpointer, a store,
    both index engines, or the chat model with ``llm.offline_fallback`` off. The body
    reports every dependency either way.
    """
    body = await _report(services)
    if body["status"] != "not_ready":
        return body
    return JSONResponse(
        {
            **body,
            "error": {
                "message": "cannot serve without: " + ", ".join(body["blocking"]),
                "type": "unavailable_error",
                "code": "not_ready",
            },
        },
        status_code=503,
    )


@router.get("/healthz/dependencies", summary="Health of each dependency")
async def dependencies(services: ServicesDep) -> dict[str, Any]:
    """Always 200 (monitoring, not routing): each dependency ``ok`` or why not.

    ``status`` is the readiness verdict: ``ready``, ``degraded`` or ``not_ready``.
    """
    return await _report(services)


# A route of the API, not prometheus_client's make_asgi_app mounted here: mounted, it answers
# GET /metrics with a 307 to /metrics/ and is left out of the OpenAPI spec and of the route
# labels. The body and headers are still the library's (Metrics.scrape: its encoders, gzip).
# bench/metrics_route.py: the same 32.6 KB (3.9 KB gzipped) in the same 27 ms a scrape.
@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Requests, latencies, runs, tokens, rate limits, replays and jobs.

    OpenMetrics when the scraper asks for it, gzipped when it accepts gzip.
    """
    body, headers = services.metrics.scrape(
        request.headers.get("accept", ""), request.headers.get("accept-encoding", "")
    )
    return Response(body, headers=headers)
