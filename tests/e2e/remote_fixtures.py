"""The production retrieval profile on real engines: settings, and what each engine holds.

Every test module gets its own Elasticsearch index and Weaviate collection on the
session's engines (tests/engines.py), so tests never see each other's chunks, and reads
the engines directly to check what the CLI and the server wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from weaviate.classes.query import Filter

from app.ingest.clean import clean_documents
from app.ingest.loaders import load_document
from app.retrieval.remote.weaviate import connect
from app.retrieval.remote.weaviate_schema import weaviate_tenant


@dataclass
class RemoteProfile:
    """Where the engines are, and the names this module's chunks live under."""

    es_url: str
    weaviate_url: str
    weaviate_grpc_port: int
    index: str
    collection: str

    def env(self, data_dir: Path, tenant: str = "default") -> dict[str, str]:
        """The ``RAGENT_*`` settings of the production retrieval profile."""
        return {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_TENANT_ID": tenant,
            "RAGENT_RETRIEVAL_VECTOR_BACKEND": "weaviate",
            "RAGENT_RETRIEVAL_KEYWORD_BACKEND": "elasticsearch",
            "RAGENT_RETRIEVAL_WEAVIATE_URL": self.weaviate_url,
            "RAGENT_RETRIEVAL_WEAVIATE_GRPC_PORT": str(self.weaviate_grpc_port),
            "RAGENT_RETRIEVAL_ELASTICSEARCH_URL": self.es_url,
            "RAGENT_RETRIEVAL_ELASTICSEARCH_INDEX": self.index,
            "RAGENT_RETRIEVAL_WEAVIATE_COLLECTION": self.collection,
            # A single-node test cluster: replicas could never be assigned.
            "RAGENT_RETRIEVAL_ELASTICSEARCH_REPLICAS": "0",
        }

    def es_chunks(self, tenant: str, doc_id: str | None = None) -> list[dict[str, Any]]:
        """Every chunk Elasticsearch holds for ``tenant`` (and ``doc_id``), as stored."""
        filters: list[dict[str, Any]] = [{"term": {"tenant_id": tenant}}]
        if doc_id is not None:
            filters.append({"term": {"doc_id": doc_id}})
        with Elasticsearch(self.es_url) as es:
            if not es.indices.exists(index=self.index):
                return []
            es.indices.refresh(index=self.index)
            found = es.search(index=self.index, query={"bool": {"filter": filters}}, size=1000)
        return [hit["_source"] for hit in found["hits"]["hits"]]

    def weaviate_chunks(self, tenant: str, doc_id: str | None = None) -> list[dict[str, Any]]:
        """Every object Weaviate holds for ``tenant`` (and ``doc_id``), as stored."""
        with connect(self.weaviate_url, grpc_port=self.weaviate_grpc_port) as client:
            if not client.collections.exists(self.collection):
                return []
            collection = client.collections.get(self.collection)
            name = weaviate_tenant(tenant)
            if name not in collection.tenants.get():
                return []
            where = Filter.by_property("tenant_id").equal(tenant)
            if doc_id is not None:
                where = where & Filter.by_property("doc_id").equal(doc_id)
            found = collection.with_tenant(name).query.fetch_objects(filters=where, limit=1000)
        return [dict(obj.properties) for obj in found.objects]

    def chunk_ids(self, tenant: str, doc_id: str | None = None) -> tuple[set[str], set[str]]:
        """The chunk ids Elasticsearch and Weaviate hold for a tenant (and document)."""
        return (
            {c["chunk_id"] for c in self.es_chunks(tenant, doc_id)},
            {c["chunk_id"] for c in self.weaviate_chunks(tenant, doc_id)},
        )


@pytest.fixture(scope="module", name="remote")
def remote_fixture(
    elasticsearch_env: dict[str, str], weaviate_env: dict[str, str]
) -> Iterator[RemoteProfile]:
    """This module's index and collection on the session's engines, dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    profile = RemoteProfile(
        es_url=elasticsearch_env["ELASTICSEARCH_URL"],
        weaviate_url=weaviate_env["WEAVIATE_URL"],
        weaviate_grpc_port=int(weaviate_env["WEAVIATE_GRPC_PORT"]),
        index=f"ragent-e2e-{suffix}",
        collection=f"RagentE2e{suffix}",
    )
    yield profile
    with Elasticsearch(profile.es_url) as es:
        es.indices.delete(index=profile.index, ignore_unavailable=True)
    with connect(profile.weaviate_url, grpc_port=profile.weaviate_grpc_port) as client:
        client.collections.delete(profile.collection)


def check_remote_citations(
    remote: RemoteProfile,
    tenant: str,
    citations: list[dict[str, Any]],
    files: Mapping[str, Path] | None = None,
) -> None:
    """Each citation names a chunk both engines hold for ``tenant``, with the same text,
    and its span, applied to its source document's loaded text, gives exactly that text.

    ``files`` maps sources that are no path on disk (uploads) to a copy of their bytes.
    """
    assert citations
    for citation in citations:
        es = [
            c
            for c in remote.es_chunks(tenant, citation["doc_id"])
            if c["chunk_id"] == citation["chunk_id"]
        ]
        wv = [
            c
            for c in remote.weaviate_chunks(tenant, citation["doc_id"])
            if c["chunk_id"] == citation["chunk_id"]
        ]
        assert len(es) == len(wv) == 1, (citation, es, wv)
        assert es[0]["text"] == wv[0]["text"]
        start, end = citation["span"]
        assert (es[0]["span_start"], es[0]["span_end"]) == (start, end)
        path = (files or {}).get(citation["source"], Path(citation["source"]))
        (doc,) = load_document(path, max_bytes=50_000_000)
        (cleaned,), _ = clean_documents([doc])
        assert cleaned.text()[start:end] == es[0]["text"], citation["label"]
