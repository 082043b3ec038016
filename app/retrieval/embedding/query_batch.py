"""Opportunistic batching of query embeddings: queries that arrive together share a pass.

A transformer forward pass over eight short queries costs about as much as three passes
over one, so under concurrent load each query costs a fraction of a lone one. A lone
query does not wait for company: the batching thread takes whatever is queued the moment
it is free, so batches form only while a pass is already running.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np
import numpy.typing as npt

__all__ = ["QueryBatcher"]

Matrix = npt.NDArray[np.float32]


class QueryBatcher:
    """Run ``embed_many`` in one background thread over the queries queued so far."""

    def __init__(
        self, embed_many: Callable[[Sequence[str]], Matrix], *, max_batch: int = 16
    ) -> None:
        """Configure the batcher; its thread starts with the first query.

        Args:
            embed_many: Embeds a list of texts into one row each.
            max_batch: Most queries per pass (longer batches pad more and gain nothing).
        """
        self._embed_many = embed_many
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str | None, Future[Matrix]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.batches: list[int] = []
        """Sizes of the last few passes (for tests and diagnostics)."""

    def embed(self, text: str) -> Matrix:
        """Embed one query, in a pass shared with the queries queued beside it.

        Raises:
            Exception: Whatever ``embed_many`` raised for the pass this query was in.
        """
        return self.submit(text).result()

    def submit(self, text: str) -> Future[Matrix]:
        """Queue one query and return at once; the future gets its row (or the failure)."""
        future: Future[Matrix] = Future()
        self._queue.put((text, future))
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="ragent-query-embed", daemon=True
                    )
                    self._thread.start()
                    atexit.register(_drain_at_exit, weakref.ref(self))
        return future

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the queries queued so far are embedded; False if that took too long.

        A query may be queued and never waited for (a prefetch whose turn needed no
        retrieval). The process must not exit in the middle of its pass: ONNX Runtime
        aborts the process when its objects are torn down under a running thread.
        """
        if self._thread is None or not self._thread.is_alive():
            return True
        marker: Future[Matrix] = Future()
        self._queue.put((None, marker))
        try:
            marker.result(timeout)
        except TimeoutError:
            return False
        return True

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]  # wait for work, then take what else is queued
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [(text, future) for text, future in batch if text is not None]
            markers = [future for text, future in batch if text is None]
            if work:
                self._pass(work)
            for marker in markers:  # everything queued before it is done
                marker.set_result(np.zeros(0, np.float32))

    def _pass(self, batch: list[tuple[str, Future[Matrix]]]) -> None:
        self.batches = [*self.batches[-15:], len(batch)]
        try:
            vectors = self._embed_many([text for text, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure
            for _, future in batch:
                future.set_exception(exc)
            return
        for row, (_, future) in enumerate(batch):
            future.set_result(vectors[row])


def _drain_at_exit(batcher: weakref.ref[QueryBatcher]) -> None:
    live = batcher()
    if live is not None:
        live.drain()
