"""``GET /metrics`` as ragent serves it (a route) next to prometheus_client's ``make_asgi_app``.

Both apps carry the same metrics: the API's registry and the engines' (every metric
registered, a few labels each, as a server has after some traffic). The library's app is
mounted at ``/metrics`` over a registry that collects both. It prints, per app, the status
of ``GET /metrics``, the body's bytes (and gzipped, when the scraper accepts gzip), and
the median time of a scrape through the ASGI stack (httpx's ``ASGITransport``, no sockets).

    .venv/bin/python bench/metrics_route.py [--scrapes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.observability import metrics as engine  # noqa: E402
from app.server.api_metrics import Metrics  # noqa: E402


class Both(Collector):
    """The API's registry and the engines', as one collector."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


def traffic(m: Metrics) -> None:
    for route in ("/v1/chat/completions", "/v1/threads", "/healthz", "/metrics"):
        for status in ("200", "429", "500"):
            m.requests.labels(route, "POST", status).inc()
        m.latency.labels(route, "POST").observe(0.2)
    for node in ("guard_input", "route", "retrieve", "respond", "guard_output"):
        engine.NODE_SECONDS.labels(node).observe(0.01)
    for model in ("qwen@http://vllm:8000/v1", "offline"):
        engine.MODEL_SECONDS.labels(model).observe(1.0)
        engine.MODEL_PROMPT_TOKENS.labels(model).observe(900)
        engine.MODEL_OUTPUT_RATE.labels(model).observe(40)


def route_app(m: Metrics) -> FastAPI:
    app = FastAPI()

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:  # as app/server/routes/health.py
        body, headers = m.scrape(
            request.headers.get("accept", ""), request.headers.get("accept-encoding", "")
        )
        return Response(body, headers=headers)

    return app


def library_app(m: Metrics) -> FastAPI:
    app = FastAPI()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Both(m.registry, engine.REGISTRY))
    app.mount("/metrics", make_asgi_app(registry))
    return app


async def scrape(app: Any, n: int, headers: dict[str, str]) -> tuple[int, int, float]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/metrics", headers=headers)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            reply = await client.get("/metrics", headers=headers, follow_redirects=True)
            times.append(time.perf_counter() - started)
        return first.status_code, reply.num_bytes_downloaded, statistics.median(times) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    args = parser.parse_args()
    m = Metrics()
    traffic(m)
    plain = {"Accept-Encoding": "identity"}
    gzip = {"Accept-Encoding": "gzip"}
    print(f"{'app':28} {'GET /metrics':>12} {'bytes':>7} {'gzip':>7} {'ms/scrape':>9}")
    for name, app in (("ragent route", route_app(m)), ("make_asgi_app mounted", library_app(m))):
        status, size, ms = await scrape(app, args.scrapes, plain)
        _, zipped, _ = await scrape(app, 3, gzip)
        print(f"{name:28} {status:>12} {size:>7} {zipped:>7} {ms:>9.2f}")


if __name__ == "__main__":
    asyncio.run(main())
