"""An LRU cache of query embeddings keyed by (model, text), shared by every embedder."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from app.observability.metrics import CACHE
from app.observability.tracing import annotate
from app.retrieval.protocols import Vector

__all__ = ["QueryCache"]

_HIT, _MISS = CACHE.labels("hit"), CACHE.labels("miss")


class QueryCache:
    """Least-recently-used query vectors, keyed by model name and query text.

    The model is part of the key, so one cache may serve several embedders. Cached
    vectors are made read-only because every caller gets the same array. A failed
    embedding is not cached. The lock guards only the bookkeeping. A thread missing on a
    query that another thread is already embedding waits for that result instead of
    computing it twice (a turn starts its query embedding early, see
    ``HybridRetriever.prefetch``); if that computation fails, the waiter computes it.
    """

    def __init__(self, maxsize: int = 2048) -> None:
        """Create an empty cache holding at most ``maxsize`` vectors (0 disables it)."""
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], threading.Event] = {}

    def __len__(self) -> int:
        """Return how many vectors are cached."""
        return len(self._items)

    def get_or_embed(self, model: str, text: str, embed: Callable[[str], Vector]) -> Vector:
        """Return the cached vector of ``(model, text)``, computing it with ``embed`` on a miss.

        Args:
            model: The embedding model's name.
            text: The query.
            embed: Computes the vector of ``text`` with ``model``.

        Returns:
            A read-only ``(dim,)`` vector.
        """
        key = (model, text)
        vector = self._cached(key)
        if vector is None:
            with self._lock:
                vector = self._items.get(key)  # finished since the look-up above
                running = self._pending.get(key)
                if vector is None and running is None:
                    done = self._pending[key] = threading.Event()
            if vector is None and running is not None:
                running.wait()  # the other caller's embedding, ours if it failed
                vector = self._cached(key)
        # A vector found in the cache or received from the caller that computed it is a
        # hit; only a computation here is a miss.
        self._count(hit=vector is not None)
        if vector is not None:
            return vector
        if running is not None:  # the computation we waited for failed: try ourselves
            return self._store(key, embed(text))
        try:
            return self._store(key, embed(text))
        finally:
            with self._lock:
                del self._pending[key]
            done.set()

    def start(self, model: str, text: str, submit: Callable[[str], Future[Vector]]) -> None:
        """Start computing ``(model, text)`` with ``submit`` unless it is cached or running.

        Returns at once; the vector is stored when ``submit``'s future finishes (in the
        thread that finishes it), and callers of :meth:`get_or_embed` meanwhile wait for
        it. A failure is not cached: the next caller computes the vector itself.
        """
        key = (model, text)
        with self._lock:
            if key in self._items or key in self._pending:
                return
            done = self._pending[key] = threading.Event()

        def release() -> None:
            with self._lock:
                del self._pending[key]
            done.set()

        def finish(future: Future[Vector]) -> None:
            try:
                if not future.cancelled() and future.exception() is None:
                    self._store(key, future.result())
            finally:
                release()

        self._count(hit=False)
        try:
            future = submit(text)
        except BaseException:
            release()
            raise
        future.add_done_callback(finish)

    def knows(self, model: str, text: str) -> bool:
        """Return whether ``(model, text)`` is cached or being embedded right now.

        A caller that only wants the vector to exist soon (a prefetch) skips the work,
        and the worker thread it would have blocked waiting, when this is true.
        """
        key = (model, text)
        with self._lock:
            return key in self._items or key in self._pending

    def _cached(self, key: tuple[str, str]) -> Vector | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
        return vector

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        (_HIT if hit else _MISS).inc()
        annotate(cache_hit=hit)

    def _store(self, key: tuple[str, str], vector: Vector) -> Vector:
        vector.setflags(write=False)
        if self.maxsize:
            with self._lock:
                self._items[key] = vector
                self._items.move_to_end(key)
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
        return vector

    def clear(self) -> None:
        """Forget every cached vector."""
        with self._lock:
            self._items.clear()
