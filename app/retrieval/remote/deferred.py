"""Remote index adapters connected on first use, so a server starts while an engine is down.

Connecting to Weaviate checks its gRPC port, and both adapters create their index or
collection when it is missing: calls that fail while the engine is down. Built eagerly,
one engine down at start-up would stop ``ragent serve`` from starting at all. Here the
adapter is built on the first call that needs it, and again on the next call after a
failed build, so the process starts, ``/readyz`` names the engine that is down, searches
answer from the other engine (marked degraded), and everything recovers by itself once
the engine is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from app.retrieval.protocols import Vector
from app.retrieval.remote import elastic, weaviate
from app.retrieval.remote.elastic import ElasticKeywordIndex
from app.retrieval.remote.weaviate import WeaviateVectorIndex
from app.retrieval.types import Chunk, Hit, SearchFilter

__all__ = [
    "Deferred",
    "DeferredKeywordIndex",
    "DeferredVectorIndex",
    "deferred_elasticsearch",
    "deferred_weaviate",
]

T = TypeVar("T")


class Deferred(Generic[T]):
    """A value built on first use; a failed build is tried again by the next caller."""

    def __init__(self, build: Callable[[], T], close: Callable[[T], None]) -> None:
        """Keep ``build`` for the first :meth:`get`, and ``close`` for :meth:`close`."""
        self._build = build
        self._close = close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, built now if no earlier call built it.

        Raises:
            Exception: Whatever the build raised (the engine is down, refuses the client).
        """
        value = self._value
        if value is not None:
            return value
        with self._lock:  # one build at a time; the others wait for its outcome
            if self._value is None:
                self._value = self._build()
            return self._value

    def close(self) -> None:
        """Close the value if it was built."""
        with self._lock:
            value, self._value = self._value, None
        if value is not None:
            self._close(value)


class DeferredVectorIndex:
    """A :class:`~app.retrieval.remote.weaviate.WeaviateVectorIndex` connected on first use."""

    def __init__(self, index: Deferred[WeaviateVectorIndex]) -> None:
        """Delegate every call to the adapter ``index`` builds."""
        self.deferred = index

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        """See :meth:`WeaviateVectorIndex.upsert`."""
        self.deferred.get().upsert(chunks, vectors)

    def replace_document(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector
    ) -> int:
        """See :meth:`WeaviateVectorIndex.replace_document`."""
        return self.deferred.get().replace_document(tenant_id, doc_id, chunks, vectors)

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        """See :meth:`WeaviateVectorIndex.begin_replace`."""
        self.deferred.get().begin_replace(tenant_id, doc_id)

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector, generation: str
    ) -> None:
        """See :meth:`WeaviateVectorIndex.write_generation`."""
        self.deferred.get().write_generation(tenant_id, doc_id, chunks, vectors, generation)

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """See :meth:`WeaviateVectorIndex.commit`."""
        self.deferred.get().commit(tenant_id, doc_id, chunk_ids)

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        """See :meth:`WeaviateVectorIndex.delete_stale`."""
        return self.deferred.get().delete_stale(tenant_id, doc_id, generation)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """See :meth:`WeaviateVectorIndex.delete_document`."""
        return self.deferred.get().delete_document(tenant_id, doc_id)

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """See :meth:`WeaviateVectorIndex.search`."""
        return self.deferred.get().search(vector, flt, k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """See :meth:`WeaviateVectorIndex.count`."""
        return self.deferred.get().count(flt, limit=limit)


class DeferredKeywordIndex:
    """An :class:`~app.retrieval.remote.elastic.ElasticKeywordIndex` connected on first use."""

    def __init__(self, index: Deferred[ElasticKeywordIndex]) -> None:
        """Delegate every call to the adapter ``index`` builds."""
        self.deferred = index

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """See :meth:`ElasticKeywordIndex.upsert`."""
        self.deferred.get().upsert(chunks)

    def replace_document(self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk]) -> int:
        """See :meth:`ElasticKeywordIndex.replace_document`."""
        return self.deferred.get().replace_document(tenant_id, doc_id, chunks)

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        """See :meth:`ElasticKeywordIndex.begin_replace`."""
        self.deferred.get().begin_replace(tenant_id, doc_id)

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], generation: str
    ) -> None:
        """See :meth:`ElasticKeywordIndex.write_generation`."""
        self.deferred.get().write_generation(tenant_id, doc_id, chunks, generation)

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """See :meth:`ElasticKeywordIndex.commit`."""
        self.deferred.get().commit(tenant_id, doc_id, chunk_ids)

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        """See :meth:`ElasticKeywordIndex.delete_stale`."""
        return self.deferred.get().delete_stale(tenant_id, doc_id, generation)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """See :meth:`ElasticKeywordIndex.delete_document`."""
        return self.deferred.get().delete_document(tenant_id, doc_id)

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """See :meth:`ElasticKeywordIndex.search`."""
        return self.deferred.get().search(query, flt, k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """See :meth:`ElasticKeywordIndex.count`."""
        return self.deferred.get().count(flt, limit=limit)


def deferred_weaviate(
    url: str, *, grpc_port: int, api_key: str | None, collection: str, dim: int
) -> DeferredVectorIndex:
    """The Weaviate adapter of ``collection``, connected (and the collection made) on first use."""

    def build() -> WeaviateVectorIndex:
        client = weaviate.connect(url, grpc_port=grpc_port, api_key=api_key)
        try:
            return weaviate.WeaviateVectorIndex(client, collection, dim=dim)
        except BaseException:
            client.close()
            raise

    return DeferredVectorIndex(Deferred(build, lambda index: index.client.close()))


def deferred_elasticsearch(
    url: str, *, api_key: str | None, index: str, shards: int, replicas: int
) -> DeferredKeywordIndex:
    """The Elasticsearch adapter of ``index``, connected (and the index made) on first use."""

    def build() -> ElasticKeywordIndex:
        client = elastic.connect(url, api_key=api_key)
        try:
            return elastic.ElasticKeywordIndex(client, index, shards=shards, replicas=replicas)
        except BaseException:
            client.close()
            raise

    return DeferredKeywordIndex(Deferred(build, lambda adapter: adapter.client.close()))
