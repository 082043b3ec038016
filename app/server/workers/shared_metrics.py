"""Prometheus metrics shared by the worker processes of one ``ragent serve``.

Each uvicorn worker keeps its own counters, and a scrape of ``/metrics`` reaches one of
them. With more than one worker, :func:`shared_metrics` gives the workers a directory for
prometheus_client's multiprocess mode: every worker writes its values to files there,
and whichever worker answers a scrape renders the sum of all of them
(:func:`shared_registry`). An operator who sets ``PROMETHEUS_MULTIPROC_DIR`` keeps their own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # prometheus_client is imported once ENV is set (see ENV)
    from prometheus_client import CollectorRegistry

__all__ = ["ENV", "multiprocess", "retire_worker", "shared_metrics", "shared_registry"]

ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Read by prometheus_client when it is imported: set it before the workers start."""


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """For more than one worker, a fresh metrics directory while the block runs.

    Args:
        workers: How many server processes will start inside the block.
    """
    if workers <= 1 or os.environ.get(ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="ragent-metrics-") as directory:
        os.environ[ENV] = directory
        try:
            yield
        finally:
            os.environ.pop(ENV, None)


def multiprocess() -> bool:
    """Whether this process writes its metrics to the shared directory."""
    return bool(os.environ.get(ENV))


@lru_cache(maxsize=1)
def shared_registry() -> CollectorRegistry:
    """A registry of every worker's metrics, summed (gauges per their mode), read at each scrape."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def retire_worker(pid: int | None = None) -> None:
    """Drop a worker's live gauges from the shared metrics.

    Args:
        pid: The worker; by default this process, as it stops. The supervisor passes
            the pid of a worker that died without stopping.
    """
    if multiprocess():
        from prometheus_client import multiprocess as shared

        shared.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
