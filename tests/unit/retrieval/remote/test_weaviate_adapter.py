"""WeaviateVectorIndex orchestration against an in-memory stand-in for the client.

The stand-in keeps one object store per Weaviate tenant and applies filters (rendered by
the client's own converter) before ranking, as Weaviate does. It checks what the adapter
asks for: tenants created on demand, objects keyed by chunk id, the replace order, error
checking of batch imports, and retries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from weaviate.classes.data import DataObject
from weaviate.collections.filters import _FilterToREST
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateBatchError

from app.retrieval.protocols import VectorIndex
from app.retrieval.remote.weaviate import WeaviateVectorIndex, WeaviateWriteError
from app.retrieval.remote.weaviate_schema import weaviate_tenant
from app.retrieval.types import Chunk, SearchFilter
from tests.fakes import HashEmbedder
from tests.unit.retrieval.remote.test_weaviate_schema import evaluate

EMB = HashEmbedder()


@dataclass
class FakeCollection:
    log: list[tuple[str, Any]] = field(default_factory=list)
    prefix: str = ""  # of this collection's entries in ``log``
    store: dict[str, dict[str, tuple[dict[str, Any], list[float]]]] = field(default_factory=dict)
    reject: list[str] = field(default_factory=list)  # messages of objects to fail next
    request_errors: list[Exception] = field(default_factory=list)  # raised by next requests

    def _log(self, op: str, arg: Any) -> None:
        self.log.append((self.prefix + op, arg))

    @property
    def tenants(self) -> Any:
        def create(tenants: list[Any]) -> None:
            for t in tenants:
                self._log("create_tenant", t.name)
                self.store.setdefault(t.name, {})

        return SimpleNamespace(
            exists=lambda name: name in self.store, create=create, get=lambda: dict(self.store)
        )

    def with_tenant(self, name: str) -> Any:
        assert name in self.store, f"tenant {name!r} used before it was created"
        objects = self.store[name]

        def insert_many(batch: list[DataObject[Any, Any]]) -> Any:
            self._log("insert_many", len(batch))
            if self.request_errors:
                raise self.request_errors.pop(0)
            errors: dict[int, Any] = {}
            for i, obj in enumerate(batch):
                if self.reject:
                    errors[i] = SimpleNamespace(message=self.reject.pop(0))
                    continue
                self._log("write", obj.properties["chunk_id"])
                objects[str(obj.uuid)] = (obj.properties, obj.vector)
            return SimpleNamespace(errors=errors)

        def insert(properties: dict[str, Any], uuid: str) -> None:
            assert str(uuid) not in objects, "insert of an existing object"
            self._log("insert", dict(properties))
            objects[str(uuid)] = (dict(properties), [])

        def replace(uuid: str, properties: dict[str, Any]) -> None:
            assert str(uuid) in objects, "replace of a missing object"
            self._log("replace", dict(properties))
            objects[str(uuid)] = (dict(properties), [])

        def delete_by_id(uuid: str) -> bool:
            self._log("delete_by_id", str(uuid))
            return objects.pop(str(uuid), None) is not None

        def delete_many(where: Any) -> Any:
            rest = _FilterToREST.convert(where)
            self._log("delete_many", rest)
            doomed = [u for u, (p, _) in objects.items() if evaluate(rest, p)]
            for u in doomed:
                del objects[u]
            return SimpleNamespace(matches=len(doomed), successful=len(doomed), failed=0)

        def matching(rest: dict[str, Any] | None) -> list[dict[str, Any]]:
            return [
                p
                for u, (p, _) in objects.items()
                if rest is None or evaluate(rest, {**p, "_id": u})
            ]

        def fetch_objects(
            filters: Any, limit: int, offset: int = 0, return_properties: Any = None
        ) -> Any:
            rest = _FilterToREST.convert(filters)
            self._log("fetch_objects", rest)
            found = matching(rest)[offset : offset + limit]
            keep = return_properties or []
            return SimpleNamespace(
                objects=[SimpleNamespace(properties={k: p[k] for k in keep}) for p in found]
            )

        def near_vector(near_vector: list[float], limit: int, filters: Any, **_: Any) -> Any:
            rest = _FilterToREST.convert(filters)
            self._log("near_vector", rest)
            hits = [
                (1 - float(np.dot(v, near_vector)), p)
                for p, v in objects.values()
                if evaluate(rest, p)
            ]  # filtered inside the search, as Weaviate does
            hits.sort(key=lambda h: h[0])
            return SimpleNamespace(
                objects=[
                    SimpleNamespace(properties=p, metadata=SimpleNamespace(distance=d))
                    for d, p in hits[:limit]
                ]
            )

        def over_all(filters: Any = None) -> Any:
            rest = None if filters is None else _FilterToREST.convert(filters)
            return SimpleNamespace(total_count=len(matching(rest)))

        return SimpleNamespace(
            data=SimpleNamespace(
                insert_many=insert_many,
                insert=insert,
                replace=replace,
                delete_by_id=delete_by_id,
                delete_many=delete_many,
                exists=lambda uuid: str(uuid) in objects,
            ),
            query=SimpleNamespace(near_vector=near_vector, fetch_objects=fetch_objects),
            aggregate=SimpleNamespace(over_all=over_all),
        )


@dataclass
class FakeClient:
    """Two collections: the chunks, and their commit markers (``<name>Commits``).

    Both write to one ``log``, the markers' entries prefixed with ``marker.``, so the
    order of requests across the two can be checked.
    """

    log: list[tuple[str, Any]] = field(default_factory=list)
    collection: FakeCollection = field(init=False)
    markers: FakeCollection = field(init=False)
    created: list[dict[str, Any]] = field(default_factory=list)
    exists_error: Exception | None = None

    def __post_init__(self) -> None:
        self.collection = FakeCollection(self.log)
        self.markers = FakeCollection(self.log, prefix="marker.")

    @property
    def collections(self) -> Any:
        def exists(name: str) -> bool:
            if self.exists_error is not None:
                error, self.exists_error = self.exists_error, None
                raise error
            return any(c["name"] == name for c in self.created)

        return SimpleNamespace(
            exists=exists,
            create=lambda **cfg: self.created.append(cfg),
            get=lambda name: self.markers if name.endswith("Commits") else self.collection,
        )


def _marker_ids(client: FakeClient, tenant: str = "acme/eu") -> dict[str, list[str]]:
    """The commit markers of one tenant: document id -> committed chunk ids."""
    shard = client.markers.store.get(weaviate_tenant(tenant), {})
    return {p["doc_id"]: p["chunk_ids"] for p, _ in shard.values()}


def _chunk(cid: str, doc: str = "d1", tenant: str = "acme/eu", acl: tuple[str, ...] = ()) -> Chunk:
    return Chunk(cid, doc, tenant, "a.md", f"text about {cid}", (0, 5), f"h{cid}", acl)


def _index(client: FakeClient) -> WeaviateVectorIndex:
    return WeaviateVectorIndex(client, "RagentTest", dim=EMB.dim)  # type: ignore[arg-type]


def _vecs(chunks: list[Chunk]) -> Any:
    return EMB.embed_documents([c.text for c in chunks])


def test_collection_is_created_once() -> None:
    client = FakeClient()
    assert isinstance(_index(client), VectorIndex)
    _index(client)
    # The commit markers' collection is created with the chunks', once.
    assert [c["name"] for c in client.created] == ["RagentTest", "RagentTestCommits"]
    markers = client.created[1]
    assert [p.name for p in markers["properties"]] == ["doc_id", "chunk_ids"]
    assert markers["multi_tenancy_config"].enabled  # one shard per tenant, like the chunks
    # A collection from before commit markers existed gets its markers' collection.
    older = FakeClient(created=[{"name": "RagentTest"}])
    _index(older)
    assert [c["name"] for c in older.created] == ["RagentTest", "RagentTestCommits"]


def test_tenants_are_created_on_demand_and_unknown_ones_read_as_empty() -> None:
    client = FakeClient()
    index = _index(client)
    flt = SearchFilter("acme/eu", frozenset({"hr"}))
    assert index.search(EMB.embed_query("x"), flt, 5) == []
    assert index.count(flt) == 0
    assert client.log == []  # nothing was queried or created for reads, markers included
    # A delete writes: it hides the document (an empty marker) and then forgets it.
    assert index.delete_document("acme/eu", "d1") == 0
    assert [op for op, _ in client.log] == [
        "marker.create_tenant",
        "marker.insert",
        "marker.delete_by_id",
    ]
    assert client.collection.store == {} and _marker_ids(client) == {}

    client.log.clear()
    chunks = [_chunk("a"), _chunk("b", acl=("hr",)), _chunk("c", tenant="t2")]
    index.upsert(chunks, _vecs(chunks))
    index.upsert(chunks[:1], _vecs(chunks[:1]))
    creates = [name for op, name in client.log if op == "create_tenant"]
    assert creates == [weaviate_tenant("acme/eu"), "t2"]
    hits = index.search(EMB.embed_query("text about b"), flt, 5)
    assert [h.chunk for h in hits] == [chunks[1], chunks[0]]  # no markers: all visible
    assert hits[0].score == pytest.approx(1.0)
    assert index.count() == 3 and index.count(flt) == 2
    assert index.count(SearchFilter("acme/eu")) == 1

    # Reading the markers of a tenant that has none neither fetches nor creates any.
    client.log.clear()
    (hit,) = index.search(EMB.embed_query("text about c"), SearchFilter("t2"), 5)
    assert hit.chunk == chunks[2]
    assert [op for op, _ in client.log] == ["near_vector"]
    assert "t2" not in client.markers.store


def test_objects_are_keyed_by_chunk_id() -> None:
    client = FakeClient()
    index = _index(client)
    index.upsert([_chunk("a")], _vecs([_chunk("a")]))
    index.upsert([_chunk("a")], _vecs([_chunk("a")]))
    assert index.count() == 1


def test_replace_writes_before_it_deletes_stale_chunks() -> None:
    client = FakeClient()
    index = _index(client)
    old = [_chunk("a"), _chunk("b")]
    index.replace_document("acme/eu", "d1", old, _vecs(old))
    keep = [_chunk("keep", doc="d2")]
    index.upsert(keep, _vecs(keep))  # no marker: visible as it is
    client.log.clear()
    new = [_chunk("b"), _chunk("c")]
    assert index.replace_document("acme/eu", "d1", new, _vecs(new)) == 1  # only "a" was stale
    ops = [op for op, _ in client.log]
    assert ops == [
        "marker.fetch_objects",  # begin: "d1" has a marker, kept as it is
        "insert_many",  # the new version, hidden by the marker
        "write",
        "write",
        "marker.replace",  # commit: readers switch to the new version in one write
        "delete_many",  # only then are stale chunks deleted
        "delete_many",
    ]
    assert client.log[4][1] == {"doc_id": "d1", "chunk_ids": ["b", "c"]}
    where = client.log[5][1]
    assert {"operator": "NotEqual", "path": ["generation"]}.items() <= where["operands"][1].items()
    ids = {
        h.chunk.chunk_id for h in index.search(EMB.embed_query("text"), SearchFilter("acme/eu"), 9)
    }
    assert ids == {"b", "c", "keep"}
    assert _marker_ids(client) == {"d1": ["b", "c"]}
    with pytest.raises(ValueError):
        index.replace_document("acme/eu", "d1", [_chunk("x", doc="d9")], _vecs([_chunk("x")]))


def test_a_document_without_a_marker_gets_one_listing_its_chunks() -> None:
    client = FakeClient()
    index = WeaviateVectorIndex(client, "RagentTest", batch_size=2)  # type: ignore[arg-type]
    old = [_chunk(c) for c in "abcde"] + [_chunk("other", doc="d2")]
    index.upsert(old, _vecs(old))  # written before markers existed: no marker
    client.log.clear()
    index.begin_replace("acme/eu", "d1")
    ops = [op for op, _ in client.log]
    # The document's chunks are listed, page by page, and become its marker.
    assert ops == [
        "fetch_objects",
        "fetch_objects",
        "fetch_objects",
        "marker.create_tenant",
        "marker.insert",
    ]
    doc = {"operator": "Equal", "path": ["doc_id"], "valueText": "d1"}
    assert all(doc in where["operands"] for op, where in client.log if op == "fetch_objects")
    assert _marker_ids(client) == {"d1": ["a", "b", "c", "d", "e"]}

    new = [_chunk("a"), _chunk("z")]
    index.write_generation("acme/eu", "d1", new, _vecs(new), "g2")
    flt = SearchFilter("acme/eu")
    ids = {h.chunk.chunk_id for h in index.search(EMB.embed_query("text"), flt, 9)}
    assert ids == {"a", "b", "c", "d", "e", "other"}  # still the old version, whole
    index.begin_replace("acme/eu", "d1")  # a marker is there: kept
    assert _marker_ids(client)["d1"] == ["a", "b", "c", "d", "e"]
    index.begin_replace("acme/eu", "new")  # a new document: hidden until its commit
    assert _marker_ids(client)["new"] == []


def test_failed_objects_are_retried_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WeaviateVectorIndex._write.retry, "sleep", lambda s: None)  # type: ignore[attr-defined]
    client = FakeClient()
    index = _index(client)
    chunks = [_chunk("a"), _chunk("b")]
    client.collection.reject = ["disk full"]  # one object fails once: the retry succeeds
    index.upsert(chunks, _vecs(chunks))
    assert index.count() == 2
    client.collection.reject = ["vector length mismatch"] * 10
    with pytest.raises(WeaviateWriteError, match="vector length mismatch"):
        index.upsert(chunks, _vecs(chunks))


def test_large_imports_are_split_into_batch_size_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WeaviateVectorIndex._write.retry, "sleep", lambda s: None)  # type: ignore[attr-defined]
    client = FakeClient()
    index = WeaviateVectorIndex(client, "RagentTest", batch_size=3)  # type: ignore[arg-type]
    chunks = [_chunk(f"c{i}") for i in range(8)]
    index.upsert(chunks, _vecs(chunks))
    sizes = sorted(n for op, n in client.collection.log if op == "insert_many")
    assert sizes == [2, 3, 3]
    assert index.count() == 8
    client.collection.reject = ["disk full"] * 30  # every request of every attempt fails
    with pytest.raises(WeaviateWriteError, match="8 of 8 objects failed: disk full"):
        index.upsert(chunks, _vecs(chunks))


def test_failed_batch_requests_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WeaviateVectorIndex._write.retry, "sleep", lambda s: None)  # type: ignore[attr-defined]
    client = FakeClient()
    index = _index(client)
    chunks = [_chunk("a"), _chunk("b")]
    client.collection.request_errors = [WeaviateBatchError("Deadline Exceeded")]
    index.upsert(chunks, _vecs(chunks))
    assert index.count() == 2
    client.collection.request_errors = [WeaviateBatchError("Deadline Exceeded")] * 3
    with pytest.raises(WeaviateBatchError):
        index.upsert(chunks, _vecs(chunks))


def test_bad_input_is_refused_before_writing() -> None:
    client = FakeClient()
    index = _index(client)
    with pytest.raises(ValueError):
        index.upsert([_chunk("a")], np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError):
        index.upsert([_chunk("a"), _chunk("b")], _vecs([_chunk("a")]))
    with pytest.raises(ValueError, match="reserved"):
        index.upsert([_chunk("a", acl=("__public__",))], _vecs([_chunk("a")]))
    assert client.collection.log == []


def test_transient_rest_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WeaviateVectorIndex.ensure_collection.retry, "sleep", lambda s: None)  # type: ignore[attr-defined]
    response = httpx.Response(503, request=httpx.Request("GET", "http://localhost/v1/schema"))
    client = FakeClient(exists_error=UnexpectedStatusCodeError("schema", response))
    _index(client)
    assert [c["name"] for c in client.created] == ["RagentTest", "RagentTestCommits"]
    bad = httpx.Response(401, request=httpx.Request("GET", "http://localhost/v1/schema"))
    with pytest.raises(UnexpectedStatusCodeError):
        _index(FakeClient(exists_error=UnexpectedStatusCodeError("schema", bad)))


def test_distinct_tenants_never_share_objects() -> None:
    client = FakeClient()
    index = _index(client)
    chunks = [_chunk(f"c{i}", tenant=t) for i, t in enumerate(["acme/eu", "acme eu", "h--x", "t"])]
    index.upsert(chunks, _vecs(chunks))
    for chunk in chunks:
        hits = index.search(EMB.embed_query(chunk.text), SearchFilter(chunk.tenant_id), 10)
        assert [h.chunk for h in hits] == [chunk]
    assert len(client.collection.store) == 4
    assert uuid.UUID(next(iter(client.collection.store["t"])))  # ids are UUIDs
    # Nor commit markers: the same document id in each tenant has a marker of its own.
    for chunk in chunks:
        index.replace_document(chunk.tenant_id, chunk.doc_id, [chunk], _vecs([chunk]))
    assert len(client.markers.store) == 4
    for chunk in chunks:
        assert _marker_ids(client, chunk.tenant_id) == {"d1": [chunk.chunk_id]}
        hits = index.search(EMB.embed_query(chunk.text), SearchFilter(chunk.tenant_id), 10)
        assert [h.chunk for h in hits] == [chunk]
