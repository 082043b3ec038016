"""Each worker's process metrics, with several workers (prometheus_client's multiprocess mode).

prometheus_client's ``ProcessCollector`` reads the process that renders a scrape, and its
multiprocess mode, which merges the workers' files, leaves collectors out (its documentation:
"Custom collectors do not work (e.g. cpu and memory metrics)"). So each worker reads its own
``/proc`` figures with that collector and writes them as gauges of the multiprocess kind
``liveall``: one sample per live worker, labelled by ``pid``, dropped when the worker goes
(:func:`~app.server.workers.shared_metrics.retire_worker`). CPU time is a counter, summed over
every worker the server ran, so ``rate(process_cpu_seconds_total[1m])`` is the server's CPU.
A worker refreshes them every :data:`INTERVAL_S` and when it answers a scrape; one refresh
reads ``/proc`` for about 0.1 ms.
"""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

__all__ = ["INTERVAL_S", "WorkerProcessMetrics"]

INTERVAL_S: Final = 5.0
"""How often a worker writes its figures (a scrape reads them at most this old)."""

_GAUGES: Final = {
    "process_resident_memory_bytes": "Resident memory of each worker, in bytes.",
    "process_virtual_memory_bytes": "Virtual memory of each worker, in bytes.",
    "process_open_fds": "Open file descriptors of each worker.",
    "process_max_fds": "Most open file descriptors a worker may have.",
    "process_start_time_seconds": "When each worker started, in seconds since the epoch.",
}


class WorkerProcessMetrics:
    """This worker's memory, file descriptors, start time and CPU time, in shared files."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Create the metrics in ``registry`` (a worker's; multiprocess mode writes files)."""
        self._source = ProcessCollector(registry=None)
        self._gauges = {
            name: Gauge(name, doc, registry=registry, multiprocess_mode="liveall")
            for name, doc in _GAUGES.items()
        }
        self._cpu = Counter(
            "process_cpu_seconds",
            "User and system CPU time of every worker the server ran, in seconds.",
            registry=registry,
        )
        self._cpu_seen = 0.0

    def refresh(self) -> None:
        """Write this worker's current figures."""
        for family in self._source.collect():
            value = family.samples[0].value if family.samples else None
            if value is None:
                continue
            if family.name == "process_cpu_seconds":
                if value > self._cpu_seen:
                    self._cpu.inc(value - self._cpu_seen)
                    self._cpu_seen = value
            elif family.name in self._gauges:
                self._gauges[family.name].set(value)

    async def run(self) -> None:
        """Refresh every :data:`INTERVAL_S` until cancelled."""
        while True:
            self.refresh()
            await asyncio.sleep(INTERVAL_S)
