"""Elasticsearch mapping, documents and queries: pure functions, testable without a server.

Storage choices:

* A chunk with an empty ACL is stored with ``acl = ["__public__"]`` (:data:`PUBLIC`), so
  visibility is one ``terms`` filter, ``acl in [*caller_groups, "__public__"]``, inside the
  bool query's ``filter`` clause next to the tenant ``term``. No ``must_not exists`` branch is
  needed, and a chunk can never be made public by accident: an ACL that names the marker
  itself is refused.
* The document ``_id`` is ``"<len(tenant)>:<tenant>:<chunk_id>"``: one tenant can never
  overwrite another tenant's chunk, whatever the chunk ids are.
* Every write stamps a ``generation`` token, so a replace can delete only the chunks the new
  version of a document no longer has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.retrieval.remote.stored import PUBLIC, chunk_fields, fields_to_chunk
from app.retrieval.types import Chunk, SearchFilter

__all__ = [
    "PUBLIC",
    "build_query",
    "chunk_to_doc",
    "doc_to_chunk",
    "document_id",
    "document_query",
    "filter_clauses",
    "index_mapping",
]

"""The ``acl`` value stored for chunks every user of the tenant may read."""


def index_mapping(shards: int = 1, replicas: int = 1) -> dict[str, Any]:
    """Return the index ``settings`` and ``mappings``: strict fields, English BM25 analyzer."""
    keyword = {"type": "keyword"}
    text = {"type": "text", "analyzer": "ragent_english"}
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "similarity": {"default": {"type": "BM25", "k1": 1.2, "b": 0.75}},
            "analysis": {
                "filter": {
                    "ragent_possessive": {"type": "stemmer", "language": "possessive_english"},
                    "ragent_stop": {"type": "stop", "stopwords": "_english_"},
                    "ragent_stemmer": {"type": "stemmer", "language": "english"},
                },
                "analyzer": {
                    "ragent_english": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": [
                            "ragent_possessive",
                            "lowercase",
                            "asciifolding",
                            "ragent_stop",
                            "ragent_stemmer",
                        ],
                    }
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "chunk_id": keyword,
                "doc_id": keyword,
                "tenant_id": keyword,
                "source": keyword,
                "acl": keyword,
                "content_hash": keyword,
                "generation": keyword,
                "text": text,
                "heading": text,
                "span_start": {"type": "integer"},
                "span_end": {"type": "integer"},
                "page": {"type": "integer"},
            },
        },
    }


def document_id(tenant_id: str, chunk_id: str) -> str:
    """Return the ES ``_id`` of a chunk: unique per tenant, unambiguous for any ids."""
    return f"{len(tenant_id)}:{tenant_id}:{chunk_id}"


def chunk_to_doc(chunk: Chunk, generation: str = "") -> dict[str, Any]:
    """Map a chunk to ``_source`` (see :func:`app.retrieval.remote.stored.chunk_fields`)."""
    return chunk_fields(chunk, generation)


def doc_to_chunk(src: Mapping[str, Any]) -> Chunk:
    """Map ``_source`` back to a :class:`Chunk`."""
    return fields_to_chunk(src)


def filter_clauses(flt: SearchFilter) -> list[dict[str, Any]]:
    """Return the bool ``filter`` clauses for a caller: its tenant, and its ACL groups."""
    return [
        {"term": {"tenant_id": flt.tenant_id}},
        {"terms": {"acl": [PUBLIC, *sorted(flt.groups - {PUBLIC})]}},
    ]


def build_query(query: str, flt: SearchFilter, k: int) -> dict[str, Any]:
    """Return the search body: BM25 ``match`` scoring, tenant and ACL as non-scoring filters.

    ``multi_match`` analyses the text as plain words: quotes, ``AND``/``OR`` and other
    operators are searched for as words, never parsed as query syntax.
    """
    return {
        "query": {
            "bool": {
                "must": {"multi_match": {"query": query, "fields": ["text", "heading"]}},
                "filter": filter_clauses(flt),
            }
        },
        "size": k,
        "track_total_hits": False,
    }


def document_query(tenant_id: str, doc_id: str, keep_generation: str | None) -> dict[str, Any]:
    """Select a document's chunks, optionally all but those of ``keep_generation``."""
    query: dict[str, Any] = {
        "bool": {"filter": [{"term": {"tenant_id": tenant_id}}, {"term": {"doc_id": doc_id}}]}
    }
    if keep_generation is not None:
        query["bool"]["must_not"] = [{"term": {"generation": keep_generation}}]
    return query
