"""Operations: liveness, readiness, each dependency's health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app.server.api_metrics import CONTENT_TYPE_LATEST
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Requests, latencies, runs, tokens, rate limits, replays and jobs."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
