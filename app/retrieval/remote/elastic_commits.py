"""Elasticsearch commit markers (:mod:`app.retrieval.remote.commits`): one index beside the chunks.

The markers live in ``<index>-commits``, one document per ragent document, with the same
``_id`` scheme as chunks. Reads use ``mget``, which is real-time in Elasticsearch: a
marker is seen by the very next search, with no refresh to wait for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

from app.retrieval.remote.elastic_schema import document_id

__all__ = ["ElasticCommits"]

_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "tenant_id": {"type": "keyword"},
        "doc_id": {"type": "keyword"},
        # Read back whole, never searched.
        "chunk_ids": {"type": "keyword", "index": False, "doc_values": False},
    },
}


class ElasticCommits:
    """The :class:`~app.retrieval.remote.commits.CommitMarkers` of one chunk index."""

    def __init__(self, client: Elasticsearch, chunk_index: str) -> None:
        """Use ``<chunk_index>-commits`` through ``client`` (see :meth:`ensure`)."""
        self._es = client
        self.index = f"{chunk_index}-commits"

    def ensure(self, shards: int, replicas: int) -> None:
        """Create the marker index unless it exists."""
        try:
            self._es.indices.create(
                index=self.index,
                settings={"number_of_shards": shards, "number_of_replicas": replicas},
                mappings=_MAPPING,
            )
        except BadRequestError as err:
            if err.error != "resource_already_exists_exception":
                raise

    def _doc(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "doc_id": doc_id, "chunk_ids": list(chunk_ids)}

    def begin(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str] = ()) -> None:
        """Give a document without a marker one listing ``chunk_ids`` (409: it has one, kept)."""
        self._es.options(ignore_status=409).create(
            index=self.index,
            id=document_id(tenant_id, doc_id),
            document=self._doc(tenant_id, doc_id, chunk_ids),
        )

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """Make exactly ``chunk_ids`` the document's visible chunks."""
        self._es.index(
            index=self.index,
            id=document_id(tenant_id, doc_id),
            document=self._doc(tenant_id, doc_id, chunk_ids),
        )

    def forget(self, tenant_id: str, doc_id: str) -> None:
        """Remove the document's marker."""
        self._es.options(ignore_status=404).delete(
            index=self.index, id=document_id(tenant_id, doc_id)
        )

    def committed(self, tenant_id: str, doc_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        """The committed chunk ids of the documents that have a marker."""
        ids = sorted(set(doc_ids))
        if not ids:
            return {}
        found = self._es.mget(
            index=self.index,
            ids=[document_id(tenant_id, d) for d in ids],
            source_includes=["doc_id", "chunk_ids"],
        )
        return {
            doc["_source"]["doc_id"]: frozenset(doc["_source"]["chunk_ids"])
            for doc in found["docs"]
            if doc.get("found")
        }

    def drop(self) -> None:
        """Delete the marker index (tests and tear-down)."""
        self._es.options(ignore_status=404).indices.delete(index=self.index)
