"""Writing documents to remote engines (Weaviate + Elasticsearch), with records (SQLite or Redis).

The two engines share no transaction, with each other or within themselves. Each keeps a
commit marker per document (:mod:`app.retrieval.remote.commits`) that lists the chunks readers
may see, so a replace runs in phases across both engines:

1. ``begin``: a document without a marker in an engine gets one listing the chunks it
   has there: none for a new document (hidden until commit);
2. ``write``: the new version's chunks go to both engines, hidden by the markers;
3. ``commit``: each engine's marker is switched to the new chunk ids, one write each;
4. the local record is committed, so the next ingest skips the document;
5. ``delete_stale``: chunks of other generations are removed (already hidden).

If an engine or the writer dies before 3, readers keep seeing the old version (or
nothing, for a new document) in both engines, and the next ingest redoes the document
because its record was not committed. Between the two commits of 3, each engine shows
one whole version, the new one in the engine that switched. A failure in 5 leaves hidden
leftovers that the document's next replace or delete removes; it is logged, not raised.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

from app.retrieval.protocols import Vector
from app.retrieval.remote.records import DocumentRecords
from app.retrieval.types import Chunk, DocumentRecord

__all__ = ["FanOutWriter", "RemoteKeywordWriter", "RemoteVectorWriter"]

logger = logging.getLogger(__name__)


class _Phases(Protocol):
    """The phases of a replace that both engines share."""

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        """Hide a document that has no commit marker yet until :meth:`commit`."""
        ...

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """Switch the document to exactly ``chunk_ids``."""
        ...

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        """Delete the document's chunks of any other generation."""
        ...

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Hide, then delete every chunk of a document."""
        ...


class RemoteVectorWriter(_Phases, Protocol):
    """The write side of a remote vector engine."""

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector, generation: str
    ) -> None:
        """Write a new version's chunks and vectors, hidden until :meth:`commit`."""
        ...


class RemoteKeywordWriter(_Phases, Protocol):
    """The write side of a remote keyword engine."""

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], generation: str
    ) -> None:
        """Write a new version's chunks, hidden until :meth:`commit`."""
        ...


class FanOutWriter:
    """A :class:`~app.retrieval.protocols.DocumentWriter` over two remote engines."""

    def __init__(
        self,
        *,
        records: DocumentRecords,
        vectors: RemoteVectorWriter,
        keywords: RemoteKeywordWriter,
    ) -> None:
        """Write chunks to ``vectors`` and ``keywords``; keep records in ``records``."""
        self._records = records
        self._vectors = vectors
        self._keywords = keywords

    def document(self, tenant_id: str, doc_id: str) -> DocumentRecord | None:
        """Return what is indexed for a document, or None."""
        return self._records.document(tenant_id, doc_id)

    def documents(self, tenant_id: str) -> list[DocumentRecord]:
        """Return every document indexed for a tenant."""
        return self._records.documents(tenant_id)

    def replace_document(
        self, record: DocumentRecord, chunks: Sequence[Chunk], vectors: Vector
    ) -> None:
        """Replace the chunks in both engines in phases (see the module docstring).

        Raises:
            Exception: An engine failed before both committed; the record is not
                committed, so the next ingest redoes the document.
        """
        tenant, doc = record.tenant_id, record.doc_id
        generation = uuid.uuid4().hex
        chunk_ids = [c.chunk_id for c in chunks]
        self._vectors.begin_replace(tenant, doc)
        self._keywords.begin_replace(tenant, doc)
        self._vectors.write_generation(tenant, doc, chunks, vectors, generation)
        self._keywords.write_generation(tenant, doc, chunks, generation)
        self._vectors.commit(tenant, doc, chunk_ids)
        self._keywords.commit(tenant, doc, chunk_ids)
        self._records.put_record(record, chunk_ids)
        for name, engine in (("vector", self._vectors), ("keyword", self._keywords)):
            try:
                engine.delete_stale(tenant, doc, generation)
            except Exception as exc:  # noqa: BLE001 - hidden leftovers; the next replace removes them
                logger.warning(
                    "stale chunks of a replaced document stay hidden in the %s engine: %s",
                    name,
                    type(exc).__name__,
                )

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Forget the record first (so a crash re-checks), then delete from both engines."""
        self._records.forget_record(tenant_id, doc_id)
        removed = self._vectors.delete_document(tenant_id, doc_id)
        self._keywords.delete_document(tenant_id, doc_id)
        return removed

    def flush(self) -> None:
        """Nothing to catch up: both engines index on write (refresh is theirs)."""
        self._records.flush()
