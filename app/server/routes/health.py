"""Operations: liveness, readiness of each configured engine, Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.server.api_metrics import CONTENT_TYPE_LATEST
from app.server.checks import readiness
from app.server.deps import ServicesDep
from app.server.errors import SERVER_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["operations"], responses=SERVER_RESPONSES)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness of every configured engine", response_model=None)
async def readyz(request: Request, services: ServicesDep) -> Any:
    """Check each engine (indexes, checkpointer, store, state, chat endpoints); 503 if one fails."""
    started = time.perf_counter()
    checks = await asyncio.wait_for(readiness(services), timeout=10)
    ok = all(c["status"] == "ok" for c in checks.values())
    body = {
        "status": "ready" if ok else "not_ready",
        "checks": checks,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if ok:
        return body
    return JSONResponse(
        {
            **body,
            "error": {
                "message": "an engine is not ready",
                "type": "unavailable_error",
                "code": "not_ready",
            },
        },
        status_code=503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Requests, latencies, runs, tokens, rate limits, replays and jobs."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
