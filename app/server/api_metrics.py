"""Prometheus metrics of the API, in a registry of their own (served at ``/metrics``).

``/metrics`` also renders the process-wide metrics of the graph and its engines
(:data:`app.observability.metrics.REGISTRY`).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from app.observability.metrics import REGISTRY as ENGINE_REGISTRY
from app.server.workers.process_metrics import WorkerProcessMetrics
from app.server.workers.shared_metrics import multiprocess, shared_registry

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class _Both(Collector):
    """The API's registry and the engines', collected as one (one exposition, one ``# EOF``)."""

    def __init__(self, api: CollectorRegistry) -> None:
        self._api = api

    def collect(self) -> Iterator[Metric]:
        yield from self._api.collect()
        yield from ENGINE_REGISTRY.collect()


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Request, run, rate-limit and job metrics."""

    def __init__(self) -> None:
        """Create the metrics in a fresh registry."""
        self.registry = CollectorRegistry()
        self._both: CollectorRegistry | None = None
        # prometheus_client's defaults: process_* (CPU, memory, open files), python_info and
        # python_gc_*. With several workers its multiprocess mode cannot merge collectors
        # (shared_registry serves the shared files): each worker writes its process_* figures
        # there itself, by pid; python_info and python_gc_* are left out.
        self.process: WorkerProcessMetrics | None = None
        if multiprocess():
            self.process = WorkerProcessMetrics(self.registry)
        else:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self.requests = Counter(
            "ragent_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ragent_http_request_seconds",
            "Time to the end of the response (streams: to the last event).",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Gauge modes apply with several workers (app/server/workers/shared_metrics.py).
        self.in_flight = Gauge(
            "ragent_http_requests_in_flight",
            "Requests being served.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.first_token = Histogram(
            "ragent_http_time_to_first_token_seconds",
            "Streamed chat: time from the request to its first content token.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "ragent_active_streams",
            "Streamed runs in progress.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.runs = Counter(
            "ragent_runs_total",
            "Agent runs by mode (json, stream) and outcome (answered, refused, waiting, error).",
            ["mode", "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "ragent_tokens_total",
            "Model tokens reported by runs, by kind (prompt, completion).",
            ["kind"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "ragent_rate_limited_total", "Requests refused with 429.", registry=self.registry
        )
        self.quota_refusals = Counter(
            "ragent_quota_refusals_total",
            "Turns refused with 429 insufficient_quota, by scope (tenant, user) and limit "
            "(tokens, requests).",
            ["scope", "limit"],
            registry=self.registry,
        )
        self.cost = Counter(
            "ragent_cost_total",
            "Cost of model calls (server.prices), by model.",
            ["model"],
            registry=self.registry,
        )
        self.request_cost = Histogram(
            "ragent_request_cost",
            "Cost of each turn (every model call of it), in the price table's currency.",
            buckets=(0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=self.registry,
        )
        self.replays = Counter(
            "ragent_replays_total",
            "Responses served again without a run, by cause (idempotency, last_event_id).",
            ["cause"],
            registry=self.registry,
        )
        self.frozen_objects = Gauge(
            "ragent_gc_frozen_objects",
            "Start-up objects kept out of garbage collection (gc.freeze once the server is warm).",
            registry=self.registry,
            multiprocess_mode="liveall",  # one sample per live worker, labelled by pid
        )
        self.jobs = Counter(
            "ragent_ingest_jobs_total",
            "Ingestion jobs by final status.",
            ["status"],
            registry=self.registry,
        )

    def scrape(self, accept: str = "", accept_encoding: str = "") -> tuple[bytes, dict[str, str]]:
        """Return a scrape's body and headers, as prometheus_client's own ASGI app makes them.

        The format the scraper accepts (OpenMetrics when it asks, else the text format),
        gzipped when it accepts gzip (about 8x smaller). With several workers, every
        worker's metrics, summed.

        Args:
            accept: The request's ``Accept`` header.
            accept_encoding: Its ``Accept-Encoding`` header.
        """
        encoder, content_type = choose_encoder(accept)
        body = encoder(self._exposed())
        headers = {"Content-Type": content_type}
        if gzip_accepted(accept_encoding):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def render(self) -> bytes:
        """Return the text exposition format: the API's metrics, then the engines'."""
        return self.scrape()[0]

    def _exposed(self) -> CollectorRegistry:
        if multiprocess():
            if self.process is not None:
                self.process.refresh()  # this worker's figures as of now
            return shared_registry()
        if self._both is None:
            self._both = CollectorRegistry(auto_describe=False)
            self._both.register(_Both(self.registry))
        return self._both
