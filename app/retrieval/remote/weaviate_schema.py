"""Weaviate schema, object mapping and filters: pure functions, testable without a server.

Tenant isolation uses Weaviate multi-tenancy rather than a filter alone: each tenant's
objects live in their own shard, so a query addressed to one tenant cannot reach another
tenant's objects even if a filter were wrong, and a tenant can be dropped or offloaded as a
unit. Queries also carry a ``tenant_id`` filter, a second guard should two tenant ids ever
map to one shard name.

ACL groups are a filter inside the ``near_vector`` query: chunks with an empty ACL are stored
with ``acl = ["__public__"]`` (:data:`PUBLIC`), so visibility is one ``ContainsAny`` over the
caller's groups plus the marker. Every property used in a filter has ``field``
tokenization, so a group such as ``"finance-eu"`` matches whole, not word by word.

``text`` and ``heading`` also carry a BM25 inverted index (``word`` tokenization, English
stopwords, k1 1.2, b 0.75: the Elasticsearch adapter's BM25 parameters, without its
stemming, which Weaviate does not offer), so Weaviate's own ``hybrid`` query can run on the
same collection, under the same tenant and ACL filters, as a baseline for ragent's fusion.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    StopwordsPreset,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.query import Filter
from weaviate.collections.classes.filters import _Filters

from app.retrieval.remote.stored import PUBLIC, chunk_fields, fields_to_chunk
from app.retrieval.types import Chunk, SearchFilter

__all__ = [
    "PUBLIC",
    "SEARCHABLE",
    "build_filter",
    "chunk_properties",
    "collection_config",
    "collection_properties",
    "document_filter",
    "object_to_chunk",
    "weaviate_tenant",
]

SEARCHABLE = ("text", "heading")
"""The properties Weaviate's BM25 (and so its ``hybrid`` query) searches."""

_TENANT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HASHED = "h--"


def weaviate_tenant(tenant_id: str) -> str:
    """Map a ragent tenant id to a valid Weaviate tenant name, injectively.

    Ids that are already valid names are kept, for readable shards; others (and ids that
    look like a hashed name) become ``"h--"`` plus a SHA-256 prefix.
    """
    if _TENANT_NAME.fullmatch(tenant_id) and not tenant_id.startswith(_HASHED):
        return tenant_id
    return _HASHED + hashlib.sha256(tenant_id.encode()).hexdigest()[:56]


def collection_properties() -> list[Property]:
    """Return the collection's properties, mirroring :class:`Chunk`."""

    def field(name: str, data_type: DataType = DataType.TEXT) -> Property:
        return Property(
            name=name,
            data_type=data_type,
            tokenization=Tokenization.FIELD,
            index_filterable=True,
            index_searchable=False,
        )

    def stored(name: str, data_type: DataType) -> Property:
        return Property(
            name=name, data_type=data_type, index_filterable=False, index_searchable=False
        )

    def searchable(name: str) -> Property:
        return Property(
            name=name,
            data_type=DataType.TEXT,
            tokenization=Tokenization.WORD,
            index_filterable=False,
            index_searchable=True,
        )

    return [
        field("chunk_id"),
        field("doc_id"),
        field("tenant_id"),
        field("source"),
        field("content_hash"),
        field("generation"),
        field("acl", DataType.TEXT_ARRAY),
        searchable("text"),
        searchable("heading"),
        stored("span_start", DataType.INT),
        stored("span_end", DataType.INT),
        stored("page", DataType.INT),
    ]


def collection_config(name: str) -> dict[str, Any]:
    """Return the keyword arguments of ``client.collections.create`` for ``name``."""
    return {
        "name": name,
        "properties": collection_properties(),
        "vector_config": Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        ),
        "multi_tenancy_config": Configure.multi_tenancy(
            enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
        ),
        "inverted_index_config": Configure.inverted_index(
            bm25_b=0.75, bm25_k1=1.2, stopwords_preset=StopwordsPreset.EN
        ),
    }


def chunk_properties(chunk: Chunk, generation: str = "") -> dict[str, Any]:
    """Map a chunk to the object's properties (:func:`app.retrieval.remote.stored.chunk_fields`)."""
    return chunk_fields(chunk, generation)


def object_to_chunk(props: Mapping[str, Any]) -> Chunk:
    """Map the object's properties back to a :class:`Chunk`."""
    return fields_to_chunk(props)


def build_filter(flt: SearchFilter) -> _Filters:
    """Return the query filter: the caller's tenant, and a chunk public or shared with it."""
    groups = [PUBLIC, *sorted(flt.groups - {PUBLIC})]
    return Filter.by_property("tenant_id").equal(flt.tenant_id) & Filter.by_property(
        "acl"
    ).contains_any(groups)


def document_filter(tenant_id: str, doc_id: str, keep_generation: str | None) -> _Filters:
    """Select a document's objects, optionally all but those of ``keep_generation``."""
    where = Filter.by_property("tenant_id").equal(tenant_id) & Filter.by_property("doc_id").equal(
        doc_id
    )
    if keep_generation is not None:
        where = where & Filter.by_property("generation").not_equal(keep_generation)
    return where
