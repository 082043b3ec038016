"""A bulkhead: one remote engine's blocking calls in threads of their own, bounded.

A call to an engine that is down blocks its thread for as long as the client retries
(seconds), and the caller gives up long before (``retrieval.engine_timeout_s``) without
being able to stop the thread. Run in the event loop's default executor (a handful of
threads on a small machine), such calls would soon hold every thread, and everything
else that runs in it (checkpoints, key lookups, the other engine) would wait behind a
dead engine. Each engine gets its own pool instead, and when all of its threads are
still busy, a new call fails at once rather than queueing behind them.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["Bulkhead", "BulkheadFull"]

_T = TypeVar("_T")


class BulkheadFull(RuntimeError):
    """Every thread of the engine is still busy with earlier calls."""


class Bulkhead:
    """At most ``size`` calls of one engine at a time, each in a thread of its own pool."""

    def __init__(self, name: str, size: int) -> None:
        """Create the pool (threads start on demand) for the engine called ``name``."""
        self.name = name
        self.size = size
        self._pool = ThreadPoolExecutor(size, thread_name_prefix=f"ragent-{name}")
        self._slots = threading.BoundedSemaphore(size)

    async def run(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` in the pool and wait for it.

        A caller that stops waiting (a timeout) leaves the call running; its slot is
        free again when the call returns.

        Raises:
            BulkheadFull: ``size`` earlier calls have not returned yet.
        """
        if not self._slots.acquire(blocking=False):
            raise BulkheadFull(f"{self.size} {self.name} calls still waiting on the engine")

        # The caller's context goes along, as asyncio.to_thread does: spans made in the
        # thread are children of the caller's span.
        context = contextvars.copy_context()
        try:
            future = self._pool.submit(context.run, call)
        except BaseException:
            self._slots.release()
            raise
        # Returned, raised or cancelled before it started: the slot is free again.
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)
