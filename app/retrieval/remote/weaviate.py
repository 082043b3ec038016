"""Weaviate vector index: our embedder's vectors, one Weaviate tenant per ragent tenant.

Schema, mapping and filters live in :mod:`app.retrieval.remote.weaviate_schema` (multi-tenancy and
the ACL marker are explained there). Tenants are created on demand at the first write.

Retries: the client retries gRPC calls (search, batch) on ``UNAVAILABLE`` with exponential
backoff; REST calls (schema, tenants, aggregate) and failed batch objects are retried here
with jittered exponential backoff.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import weaviate
from tenacity import (
    retry,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant
from weaviate.collections import Collection
from weaviate.collections.classes.filters import _Filters
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateBatchError,
    WeaviateConnectionError,
    WeaviateInsertManyAllFailedError,
    WeaviateTimeoutError,
)
from weaviate.util import generate_uuid5

from app.retrieval.protocols import Vector
from app.retrieval.remote.commits import begin_marker, visible_hits
from app.retrieval.remote.weaviate_commits import WeaviateCommits
from app.retrieval.remote.weaviate_schema import (
    SEARCHABLE,
    build_filter,
    chunk_properties,
    collection_config,
    document_filter,
    object_to_chunk,
    weaviate_tenant,
)
from app.retrieval.types import Chunk, Hit, SearchFilter

__all__ = ["WeaviateVectorIndex", "WeaviateWriteError", "connect"]


class WeaviateWriteError(RuntimeError):
    """Some objects of a batch import were rejected."""


def _transient(err: BaseException) -> bool:
    if isinstance(err, UnexpectedStatusCodeError):
        return err.status_code in (429, 500, 502, 503, 504)
    return isinstance(err, WeaviateConnectionError | WeaviateTimeoutError)


_retry_transient = retry(
    retry=retry_if_exception(_transient),
    wait=wait_exponential_jitter(multiplier=0.5, max=10, jitter=0.5),
    stop=stop_after_attempt(5),
    reraise=True,
)


def connect(
    url: str, *, grpc_port: int = 50051, api_key: str | None = None
) -> weaviate.WeaviateClient:
    """Connect to Weaviate at ``url`` (REST) and ``grpc_port`` on the same host; close it after.

    Raises:
        WeaviateStartUpError: REST does not answer, or the server is older than the client
            supports.
        WeaviateGRPCUnavailableError: The gRPC port does not answer a health check.
    """
    parsed = urlparse(url)
    secure = parsed.scheme == "https"
    host = parsed.hostname or "localhost"
    # The client's start-up checks would also ask the public package index for its newest
    # release on every connect: traffic to a third party, a wait of up to the init timeout
    # where egress is blocked, and a warning whenever the pin is not the newest. They are
    # skipped; their one useful part, the gRPC health check, is run below.
    client = weaviate.connect_to_custom(
        http_host=host,
        http_port=parsed.port or (443 if secure else 8080),
        http_secure=secure,
        grpc_host=host,
        grpc_port=grpc_port,
        grpc_secure=secure,
        auth_credentials=Auth.api_key(api_key) if api_key else None,
        additional_config=AdditionalConfig(timeout=Timeout(init=10, query=30, insert=120)),
        skip_init_checks=True,
    )
    try:
        # The client's own check, on the channel queries will use (TLS, headers, proxies).
        client._connection._ping_grpc("sync")
    except BaseException:
        client.close()
        raise
    return client


class WeaviateVectorIndex:
    """A :class:`~app.retrieval.protocols.VectorIndex` over one multi-tenant collection."""

    def __init__(
        self,
        client: weaviate.WeaviateClient,
        collection: str = "RagentChunk",
        *,
        dim: int | None = None,
        batch_size: int = 200,
        concurrent_requests: int = 2,
    ) -> None:
        """Use ``collection`` through a connected ``client``, creating it when missing.

        Args:
            client: A connected ``weaviate.WeaviateClient`` (see :func:`connect`).
            collection: The collection name (Weaviate capitalises the first letter).
            dim: When set, every upserted vector must have this many dimensions.
            batch_size: Objects per batch request.
            concurrent_requests: Batch requests in flight at once.
        """
        self._client = client
        self.name = collection
        self._dim = dim
        self._batch_size = batch_size
        self._concurrency = concurrent_requests
        self._tenants: set[str] = set()
        self.commits = WeaviateCommits(client, collection)
        self.ensure_collection()
        self._col: Collection[Any, Any] = client.collections.get(collection)

    @property
    def client(self) -> weaviate.WeaviateClient:
        """The client this adapter uses (its caller closes it)."""
        return self._client

    @_retry_transient
    def ensure_collection(self) -> None:
        """Create the collection (:func:`collection_config`) and its commit markers' collection."""
        if not self._client.collections.exists(self.name):
            try:
                self._client.collections.create(**collection_config(self.name))
            except UnexpectedStatusCodeError as err:  # created concurrently by another process
                if err.status_code != 422 or "already exists" not in err.message:
                    raise
        self.commits.ensure()

    @_retry_transient
    def _ensure_tenant(self, name: str) -> None:
        if name not in self._tenants:
            if not self._col.tenants.exists(name):
                try:
                    self._col.tenants.create([Tenant(name=name)])
                except UnexpectedStatusCodeError as err:  # created concurrently
                    if err.status_code != 422 or "already exists" not in err.message:
                        raise
            self._tenants.add(name)

    @_retry_transient
    def _has_tenant(self, name: str) -> bool:
        if name not in self._tenants and self._col.tenants.exists(name):
            self._tenants.add(name)
        return name in self._tenants

    @retry(
        # A failed request (deadline, overload; the client itself retries UNAVAILABLE) is
        # retried like rejected objects: objects are keyed by chunk id, so resending is safe.
        retry=retry_if_exception_type((WeaviateWriteError, WeaviateBatchError)),
        wait=wait_exponential_jitter(multiplier=0.5, max=5, jitter=0.5),
        stop=stop_after_attempt(3),
        reraise=True,
    )
    def _write(self, tenant: str, items: list[tuple[Chunk, list[float]]], gen: str) -> None:
        # One synchronous gRPC batch request per ``batch_size`` objects. The client's batch
        # context manager waits up to a second for more objects before it sends a batch
        # smaller than its size, which a document of a few chunks always is.
        col = self._col.with_tenant(tenant)
        parts = [
            [
                DataObject(
                    properties=chunk_properties(chunk, gen),
                    uuid=generate_uuid5(chunk.chunk_id),
                    vector=vector,
                )
                for chunk, vector in items[start : start + self._batch_size]
            ]
            for start in range(0, len(items), self._batch_size)
        ]

        def send(objects: list[DataObject[Any, Any]]) -> list[str]:
            try:
                res = col.data.insert_many(objects)
            except WeaviateInsertManyAllFailedError as err:
                return [err.message] * len(objects)
            return [e.message for e in res.errors.values()]

        if len(parts) == 1:
            failed = send(parts[0])
        else:
            with ThreadPoolExecutor(min(self._concurrency, len(parts))) as pool:
                failed = [m for messages in pool.map(send, parts) for m in messages]
        if failed:  # a retry re-sends everything: objects are keyed by chunk id
            raise WeaviateWriteError(f"{len(failed)} of {len(items)} objects failed: {failed[0]}")

    def _upsert(self, chunks: Sequence[Chunk], vectors: Vector, generation: str) -> None:
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or len(vectors) != len(chunks):
            raise ValueError(f"expected {len(chunks)} vectors, got shape {vectors.shape}")
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(f"expected vectors of {self._dim} dimensions")
        by_tenant: dict[str, list[tuple[Chunk, list[float]]]] = {}
        for chunk, row in zip(chunks, vectors, strict=True):
            chunk_properties(chunk)  # refuse a reserved ACL before anything is written
            by_tenant.setdefault(weaviate_tenant(chunk.tenant_id), []).append((chunk, row.tolist()))
        for tenant, items in by_tenant.items():
            self._ensure_tenant(tenant)
            self._write(tenant, items, generation)

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        """Insert or replace chunks with their vectors (one batch import per tenant).

        Raises:
            ValueError: ``vectors`` does not match ``chunks``.
            WeaviateWriteError: Objects were still rejected after retries.
        """
        self._upsert(chunks, vectors, uuid.uuid4().hex)

    @_retry_transient
    def _delete_many(self, tenant: str, where: _Filters) -> int:
        res = self._col.with_tenant(tenant).data.delete_many(where=where)
        if res.failed:
            raise WeaviateWriteError(f"{res.failed} objects were not deleted")
        return int(res.successful)

    def _delete(self, tenant_id: str, doc_id: str, keep_generation: str | None) -> int:
        name = weaviate_tenant(tenant_id)
        if not self._has_tenant(name):
            return 0
        where = document_filter(tenant_id, doc_id, keep_generation)
        deleted = 0
        while True:  # the server caps one delete_many at QUERY_MAXIMUM_RESULTS matches
            removed = self._delete_many(name, where)
            deleted += removed
            if removed == 0:
                return deleted

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Hide the document (empty marker), delete its chunks, then its marker.

        Returns:
            How many chunks were removed.
        """
        self.commits.commit(tenant_id, doc_id, [])
        deleted = self._delete(tenant_id, doc_id, None)
        self.commits.forget(tenant_id, doc_id)
        return deleted

    @_retry_transient
    def _chunk_ids(self, tenant_id: str, doc_id: str) -> list[str]:
        """The ids of every chunk the collection holds for the document, visible or not.

        Pages go by offset in the server's order: a sort by chunk id ignores case while a
        filter on it compares bytes, so pages keyed on the last id could skip some. Like
        every query, offsets end at the server's ``QUERY_MAXIMUM_RESULTS``.
        """
        name = weaviate_tenant(tenant_id)
        if not self._has_tenant(name):
            return []
        shard = self._col.with_tenant(name)
        where = document_filter(tenant_id, doc_id, None)
        ids: list[str] = []
        while True:
            page = shard.query.fetch_objects(
                filters=where,
                offset=len(ids),
                limit=self._batch_size,
                return_properties=["chunk_id"],
            ).objects
            ids.extend(str(o.properties["chunk_id"]) for o in page)
            if len(page) < self._batch_size:
                return ids

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        """Give the document a commit marker unless it has one (:func:`begin_marker`).

        Until :meth:`commit`, readers see what they saw before and nothing written after:
        a new document stays hidden; one written before markers (or by :meth:`upsert`)
        stays visible as it is.
        """
        begin_marker(self.commits, tenant_id, doc_id, lambda: self._chunk_ids(tenant_id, doc_id))

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector, generation: str
    ) -> None:
        """Import a new version's chunks, searchable but hidden by the commit marker.

        Unchanged chunk ids are overwritten in place with the same text.

        Raises:
            ValueError: A chunk belongs to another tenant or document, or ``vectors``
                does not match ``chunks``.
            WeaviateWriteError: Objects were still rejected after retries.
        """
        if any(c.tenant_id != tenant_id or c.doc_id != doc_id for c in chunks):
            raise ValueError("every chunk must belong to the document being replaced")
        if chunks:
            self._upsert(chunks, vectors, generation)

    @_retry_transient
    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """Switch the document to exactly ``chunk_ids`` (:mod:`app.retrieval.remote.commits`)."""
        self.commits.commit(tenant_id, doc_id, chunk_ids)

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        """Delete the document's chunks of any other generation; returns how many."""
        return self._delete(tenant_id, doc_id, generation)

    def replace_document(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector
    ) -> int:
        """Replace a document's chunks: readers see the old version, then the new one.

        Weaviate has no multi-object transaction, so the swap goes through the document's
        commit marker (:mod:`app.retrieval.remote.commits`): the new chunks are imported with a
        fresh ``generation`` while hidden, the marker is switched, and the chunks of other
        generations are deleted. If the process or the server dies on the way, the old
        version stays what readers see, and leftovers stay hidden until the next replace
        or delete of the document removes them.

        Returns:
            How many stale chunks were removed.

        Raises:
            ValueError: A chunk belongs to another tenant or document.
        """
        generation = uuid.uuid4().hex
        self.begin_replace(tenant_id, doc_id)
        self.write_generation(tenant_id, doc_id, chunks, vectors, generation)
        self.commit(tenant_id, doc_id, [c.chunk_id for c in chunks])
        return self.delete_stale(tenant_id, doc_id, generation)

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the ``k`` nearest chunks visible to ``flt``; score is cosine similarity."""
        name = weaviate_tenant(flt.tenant_id)
        if k <= 0 or not self._has_tenant(name):
            return []
        res = self._col.with_tenant(name).query.near_vector(
            near_vector=np.asarray(vector, np.float32).tolist(),
            limit=k,
            filters=build_filter(flt),
            return_metadata=MetadataQuery(distance=True),
        )
        hits = [
            Hit(object_to_chunk(o.properties), 1.0 - float(o.metadata.distance or 0.0))
            for o in res.objects
        ]
        return visible_hits(flt.tenant_id, hits, self.commits.committed)

    def hybrid(
        self,
        query: str,
        vector: Vector,
        flt: SearchFilter,
        k: int,
        *,
        alpha: float = 0.5,
        fusion: Literal["relative", "ranked"] = "relative",
    ) -> list[Hit]:
        """Weaviate's own hybrid search: BM25F and vector search fused on the server.

        A single-engine baseline for ragent's fusion (:mod:`app.retrieval.fusion`), under
        the same tenant and ACL filters as :meth:`search`. BM25 runs over
        :data:`~app.retrieval.remote.weaviate_schema.SEARCHABLE`. Weaviate caps each leg at
        ``QUERY_HYBRID_MAXIMUM_RESULTS`` candidates (100 by default).

        Args:
            query: The words for BM25.
            vector: The query's embedding, from the same embedder as the stored vectors.
            flt: The caller's tenant and groups.
            k: How many hits to return.
            alpha: The vector leg's weight: 0 is pure BM25, 1 pure vector search.
            fusion: ``"relative"`` (min-max normalised scores, summed with the weights) or
                ``"ranked"`` (reciprocal rank fusion, k = 60).

        Returns:
            Up to ``k`` hits, best first; the score is Weaviate's fused score.
        """
        name = weaviate_tenant(flt.tenant_id)
        if k <= 0 or not self._has_tenant(name):
            return []
        res = self._col.with_tenant(name).query.hybrid(
            query=query,
            vector=np.asarray(vector, np.float32).tolist(),
            alpha=alpha,
            query_properties=list(SEARCHABLE),
            fusion_type=(
                HybridFusion.RELATIVE_SCORE if fusion == "relative" else HybridFusion.RANKED
            ),
            limit=k,
            filters=build_filter(flt),
            return_metadata=MetadataQuery(score=True),
        )
        hits = [
            Hit(object_to_chunk(o.properties), float(o.metadata.score or 0.0)) for o in res.objects
        ]
        return visible_hits(flt.tenant_id, hits, self.commits.committed)

    @_retry_transient
    def _tenant_names(self) -> list[str]:
        return list(self._col.tenants.get())

    @_retry_transient
    def _count_in(self, tenant: str, where: _Filters | None) -> int:
        return int(self._col.with_tenant(tenant).aggregate.over_all(filters=where).total_count or 0)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks, optionally only those visible to ``flt`` (at most ``limit``).

        Weaviate's aggregate counts per tenant shard without scanning objects, so the
        limit only caps the answer.
        """
        if flt is None:
            found = sum(self._count_in(n, None) for n in self._tenant_names())
        else:
            name = weaviate_tenant(flt.tenant_id)
            found = self._count_in(name, build_filter(flt)) if self._has_tenant(name) else 0
        return found if limit is None else min(found, limit)

    def drop(self) -> None:
        """Delete the whole collection and its markers (tests and tear-down)."""
        self._client.collections.delete(self.name)
        self.commits.drop()
        self._tenants.clear()
