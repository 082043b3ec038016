"""Protocols that nodes and ingestion depend on; engines implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.retrieval.types import Chunk, DocumentRecord, Hit, SearchFilter

__all__ = ["DocumentWriter", "Embedder", "KeywordIndex", "Vector", "VectorIndex"]

Vector = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length vectors."""

    @property
    def model_name(self) -> str:
        """The model identifier, recorded with every indexed document."""
        ...

    @property
    def dim(self) -> int:
        """The vector dimension."""
        ...

    @property
    def max_tokens(self) -> int:
        """How many tokens of a passage the model reads; the rest is ignored."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        """Embed passages; returns an ``(n, dim)`` float32 matrix of unit vectors."""
        ...

    def embed_query(self, text: str) -> Vector:
        """Embed a query; returns a ``(dim,)`` float32 unit vector."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """Dense nearest-neighbour search with tenant and ACL filters inside the query."""

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        """Insert or replace chunks with their vectors."""
        ...

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document; returns how many were removed."""
        ...

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the ``k`` nearest chunks visible to ``flt``, best first."""
        ...

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks, optionally only those visible to ``flt``, stopping at ``limit``.

        A caller that only asks whether anything is visible passes ``limit=1``, which
        an engine can answer without counting everything.
        """
        ...


@runtime_checkable
class KeywordIndex(Protocol):
    """BM25 search with tenant and ACL filters inside the query."""

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace chunks."""
        ...

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document; returns how many were removed."""
        ...

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the ``k`` best BM25 matches visible to ``flt``, best first."""
        ...

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks, optionally only those visible to ``flt``, stopping at ``limit``.

        A caller that only asks whether anything is visible passes ``limit=1``, which
        an engine can answer without counting everything.
        """
        ...


@runtime_checkable
class DocumentWriter(Protocol):
    """Writes whole documents to the vector and keyword indexes together."""

    def document(self, tenant_id: str, doc_id: str) -> DocumentRecord | None:
        """Return what is indexed for a document, or None."""
        ...

    def documents(self, tenant_id: str) -> list[DocumentRecord]:
        """Return every document indexed for a tenant."""
        ...

    def replace_document(
        self, record: DocumentRecord, chunks: Sequence[Chunk], vectors: Vector
    ) -> None:
        """Atomically replace a document's chunks in every index and its record."""
        ...

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete a document's chunks from every index."""
        ...

    def flush(self) -> None:
        """Bring derived indexes up to date now, so the next search does not pay for it."""
        ...
