"""Weaviate commit markers (:mod:`app.retrieval.remote.commits`): a collection beside the chunks.

The markers live in ``<Collection>Commits``, multi-tenant like the chunks, one object per
ragent document (its id a UUID5 of the document id, within the tenant's shard), with no
vector. Reads fetch the markers of a search's documents by id in one request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import weaviate
from weaviate.classes.config import Configure, DataType, Property
from weaviate.classes.query import Filter
from weaviate.classes.tenants import Tenant
from weaviate.exceptions import UnexpectedStatusCodeError
from weaviate.util import generate_uuid5

from app.retrieval.remote.weaviate_schema import weaviate_tenant

__all__ = ["WeaviateCommits"]


def _exists_already(err: UnexpectedStatusCodeError) -> bool:
    return err.status_code == 422 and "already exists" in err.message


class WeaviateCommits:
    """The :class:`~app.retrieval.remote.commits.CommitMarkers` of one chunk collection."""

    def __init__(self, client: weaviate.WeaviateClient, chunk_collection: str) -> None:
        """Use ``<chunk_collection>Commits`` through ``client`` (see :meth:`ensure`)."""
        self._client = client
        self.name = f"{chunk_collection}Commits"
        self._tenants: set[str] = set()

    def ensure(self) -> None:
        """Create the marker collection unless it exists."""
        if self._client.collections.exists(self.name):
            return
        try:
            self._client.collections.create(
                name=self.name,
                properties=[
                    Property(
                        name=name,
                        data_type=kind,
                        index_filterable=False,
                        index_searchable=False,
                    )
                    for name, kind in (
                        ("doc_id", DataType.TEXT),
                        ("chunk_ids", DataType.TEXT_ARRAY),
                    )
                ],
                vector_config=Configure.Vectors.self_provided(),
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
                ),
            )
        except UnexpectedStatusCodeError as err:  # created concurrently by another process
            if not _exists_already(err):
                raise

    def _shard(
        self, tenant_id: str, *, create: bool = True
    ) -> weaviate.collections.Collection | None:
        """The tenant's shard of the markers, created when missing (or None, unless ``create``)."""
        name = weaviate_tenant(tenant_id)
        collection = self._client.collections.get(self.name)
        if name not in self._tenants:
            if not create and not collection.tenants.exists(name):
                return None
            if not collection.tenants.exists(name):
                try:
                    collection.tenants.create([Tenant(name=name)])
                except UnexpectedStatusCodeError as err:
                    if not _exists_already(err):
                        raise
            self._tenants.add(name)
        return collection.with_tenant(name)

    def _writable(self, tenant_id: str) -> weaviate.collections.Collection:
        shard = self._shard(tenant_id)
        assert shard is not None  # created when missing
        return shard

    def begin(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str] = ()) -> None:
        """Give a document without a marker one listing ``chunk_ids``; a marker is kept."""
        shard = self._writable(tenant_id)
        uid = generate_uuid5(doc_id)
        if shard.data.exists(uid):
            return
        properties = {"doc_id": doc_id, "chunk_ids": list(chunk_ids)}
        try:
            shard.data.insert(properties=properties, uuid=uid)
        except UnexpectedStatusCodeError as err:  # inserted concurrently: keep that one
            if not _exists_already(err):
                raise

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """Make exactly ``chunk_ids`` the document's visible chunks (one write)."""
        shard = self._writable(tenant_id)
        uid = generate_uuid5(doc_id)
        properties = {"doc_id": doc_id, "chunk_ids": list(chunk_ids)}
        if shard.data.exists(uid):
            shard.data.replace(uuid=uid, properties=properties)
        else:
            shard.data.insert(properties=properties, uuid=uid)

    def forget(self, tenant_id: str, doc_id: str) -> None:
        """Remove the document's marker."""
        self._writable(tenant_id).data.delete_by_id(generate_uuid5(doc_id))

    def committed(self, tenant_id: str, doc_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        """The committed chunk ids of the documents that have a marker."""
        ids = sorted(set(doc_ids))
        if not ids:
            return {}
        shard = self._shard(tenant_id, create=False)
        if shard is None:  # no marker was ever written for this tenant
            return {}
        found = shard.query.fetch_objects(
            filters=Filter.by_id().contains_any([generate_uuid5(d) for d in ids]),
            limit=len(ids),
            return_properties=["doc_id", "chunk_ids"],
        )
        return {
            str(o.properties["doc_id"]): frozenset(o.properties.get("chunk_ids") or ())  # type: ignore[arg-type]
            for o in found.objects
        }

    def drop(self) -> None:
        """Delete the marker collection (tests and tear-down); its tenants go with it."""
        self._client.collections.delete(self.name)
        self._tenants.clear()
