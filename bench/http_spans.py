"""The request span as ragent makes it next to opentelemetry-instrumentation-asgi's.

One tiny ASGI app, wrapped two ways, each with an SDK tracer provider that keeps spans in
memory: ragent's way (``server_span`` around the app, then the route template, the
status and the tenant, as ``app/server/middleware.py`` does) and the OpenTelemetry ASGI
middleware. A request carries what must not reach a span: an e-mail address and a token in
the query, the client's address, a user agent naming a person. It prints, per way, the
spans of one request, every attribute key, those that carry the planted data, and the
median time of a request through the ASGI stack (httpx's ``ASGITransport``).

The instrumentation is not a ragent dependency; install it apart first:

    .venv/bin/pip install --target /tmp/otel-asgi --no-deps \\
        opentelemetry-instrumentation-asgi==0.66b2 opentelemetry-instrumentation==0.66b2 \\
        opentelemetry-util-http==0.66b2 asgiref==3.11.0
    PYTHONPATH=/tmp/otel-asgi .venv/bin/python bench/http_spans.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.config.observability import ObservabilitySettings  # noqa: E402
from app.observability.tracing import server_span, setup_tracing  # noqa: E402

PLANTED = ("ann.quokka@example.org", "tok_9f8e7d6c", "203.0.113.7", "Ann Quokka's laptop")
URL = "/v1/threads?email=ann.quokka@example.org&token=tok_9f8e7d6c"
HEADERS = {"User-Agent": "Mozilla/5.0 (Ann Quokka's laptop)", "X-Tenant": "acme"}


async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def ragent_way(app: Any) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        status = [500]

        async def tracked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        with server_span("http.request", scope["headers"], method=scope["method"]) as traced:
            await app(scope, receive, tracked)
            traced.set(http_route="/v1/threads", status=status[0], tenant="acme")

    return wrapped


async def run(app: Any, n: int) -> float:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            await client.get(URL, headers=HEADERS)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def report(name: str, exporter: InMemorySpanExporter, us: float) -> None:
    spans = exporter.get_finished_spans()
    one = [s for s in spans if s.context.trace_id == spans[-1].context.trace_id]
    keys = sorted({k for s in one for k in (s.attributes or {})})
    leaks = sorted(
        k
        for s in one
        for k, v in (s.attributes or {}).items()
        if any(p.split()[0] in str(v) for p in PLANTED)
    )
    print(f"{name}: {len(one)} span(s) a request, {us:.0f} us a request")
    print(f"  attributes: {', '.join(keys)}")
    print(f"  carrying the query, client address or user agent: {', '.join(leaks) or 'none'}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    exporter = InMemorySpanExporter()
    setup_tracing(ObservabilitySettings(), exporter=exporter)
    report("ragent server_span", exporter, await run(ragent_way(endpoint), args.requests))

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = OpenTelemetryMiddleware(endpoint, tracer_provider=provider)
    report("opentelemetry-instrumentation-asgi", exporter, await run(otel, args.requests))


if __name__ == "__main__":
    asyncio.run(main())
