"""The embed-and-write stage: a thread that batches chunks, embeds them and indexes whole documents.

Running it beside the parsing and chunking stages overlaps the work: the model
(which releases the GIL) embeds one batch while the next documents are parsed.
A document is written only once all its chunks have vectors, in one transaction,
so a failure never leaves half of a document indexed.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from app.retrieval.passage import indexed_text
from app.retrieval.protocols import DocumentWriter, Embedder
from app.retrieval.types import Chunk, DocumentRecord

__all__ = ["EmbedStage", "ReadyDocument"]


@dataclass(frozen=True, slots=True)
class ReadyDocument:
    """A document whose chunks are final and only need vectors."""

    record: DocumentRecord
    chunks: list[Chunk]


_DONE = object()


class EmbedStage:
    """Embeds in batches of about ``batch_chunks`` chunks and writes documents whole."""

    def __init__(
        self, *, embedder: Embedder, writer: DocumentWriter, batch_chunks: int = 256
    ) -> None:
        """Start the stage's thread."""
        self._embedder = embedder
        self._writer = writer
        self._batch_chunks = batch_chunks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=8)
        self.embed_seconds = 0.0
        self.index_seconds = 0.0
        self.documents = 0
        self.chunks = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ragent-embed", daemon=True)
        self._thread.start()

    def put(self, document: ReadyDocument) -> None:
        """Queue a document; blocks while the stage is a few batches behind."""
        if self.error is not None:
            raise self.error
        self._queue.put(document)

    def close(self) -> None:
        """Flush what is queued and wait; re-raises the stage's error, if any."""
        self._queue.put(_DONE)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        pending: list[ReadyDocument] = []
        size = 0
        while True:
            item = self._queue.get()
            if item is not _DONE:
                assert isinstance(item, ReadyDocument)
                pending.append(item)
                size += len(item.chunks)
            if pending and (item is _DONE or size >= self._batch_chunks):
                try:
                    self._flush(pending)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self.error = exc
                    if item is not _DONE:
                        self._drain()
                    return
                pending, size = [], 0
            if item is _DONE:
                return

    def _drain(self) -> None:
        while self._queue.get() is not _DONE:
            pass

    def _flush(self, documents: list[ReadyDocument]) -> None:
        texts = [indexed_text(c) for d in documents for c in d.chunks]
        started = time.perf_counter()
        vectors = (
            self._embedder.embed_documents(texts)
            if texts
            else np.zeros((0, self._embedder.dim), np.float32)
        )
        self.embed_seconds += time.perf_counter() - started
        started = time.perf_counter()
        offset = 0
        for document in documents:
            count = len(document.chunks)
            self._writer.replace_document(
                document.record, document.chunks, vectors[offset : offset + count]
            )
            offset += count
            self.documents += 1
            self.chunks += count
        self.index_seconds += time.perf_counter() - started
