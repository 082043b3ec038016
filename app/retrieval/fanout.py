"""Writing documents to remote engines (Weaviate + Elasticsearch), recorded locally.

The two engines share no transaction. Each replace writes the new chunks before it
deletes stale ones, so a reader never finds a document missing; the local record of
what is indexed is committed last, so a crash in between makes the next ingest
redo the document instead of skipping it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.retrieval.embedded import EmbeddedIndex
from app.retrieval.protocols import Vector
from app.retrieval.types import Chunk, DocumentRecord

__all__ = ["FanOutWriter", "RemoteKeywordWriter", "RemoteVectorWriter"]


class RemoteVectorWriter(Protocol):
    """The write side of a remote vector engine."""

    def replace_document(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector
    ) -> int:
        """Write the new chunks, then delete the document's stale ones."""
        ...

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document."""
        ...


class RemoteKeywordWriter(Protocol):
    """The write side of a remote keyword engine."""

    def replace_document(self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk]) -> int:
        """Write the new chunks, then delete the document's stale ones."""
        ...

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document."""
        ...


class FanOutWriter:
    """A :class:`~app.retrieval.protocols.DocumentWriter` over two remote engines."""

    def __init__(
        self,
        *,
        records: EmbeddedIndex,
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
        """Replace the chunks in both engines, then commit the record."""
        self._vectors.replace_document(record.tenant_id, record.doc_id, chunks, vectors)
        self._keywords.replace_document(record.tenant_id, record.doc_id, chunks)
        self._records.put_record(record, [c.chunk_id for c in chunks])

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Forget the record first (so a crash re-checks), then delete from both engines."""
        self._records.forget_record(tenant_id, doc_id)
        removed = self._vectors.delete_document(tenant_id, doc_id)
        self._keywords.delete_document(tenant_id, doc_id)
        return removed

    def flush(self) -> None:
        """Nothing to catch up: both engines index on write (refresh is theirs)."""
        self._records.flush()
