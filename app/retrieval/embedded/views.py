"""The :class:`VectorIndex` and :class:`KeywordIndex` views of an embedded index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.retrieval.protocols import Vector
from app.retrieval.types import Chunk, Hit, SearchFilter

if TYPE_CHECKING:
    from app.retrieval.embedded.index import EmbeddedIndex

__all__ = ["EmbeddedKeywordIndex", "EmbeddedVectorIndex"]


class EmbeddedVectorIndex:
    """The :class:`VectorIndex` view of an :class:`EmbeddedIndex`."""

    def __init__(self, index: EmbeddedIndex) -> None:
        """Wrap ``index``."""
        self.index = index

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        """Insert or replace chunks with their vectors."""
        self.index.upsert(chunks, vectors)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document."""
        return self.index.delete_document(tenant_id, doc_id)

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the nearest visible chunks."""
        return self.index.vector_search(vector, flt, k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks (at most ``limit``)."""
        return self.index.count(flt, limit=limit)


class EmbeddedKeywordIndex:
    """The :class:`KeywordIndex` view of an :class:`EmbeddedIndex`."""

    def __init__(self, index: EmbeddedIndex) -> None:
        """Wrap ``index``."""
        self.index = index

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace chunks (keeping any stored vectors is not needed here)."""
        self.index.upsert(chunks)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document."""
        return self.index.delete_document(tenant_id, doc_id)

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the best BM25 matches."""
        return self.index.keyword_search(query, flt, k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks (at most ``limit``)."""
        return self.index.count(flt, limit=limit)
