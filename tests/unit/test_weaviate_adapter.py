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
from app.retrieval.types import Chunk, SearchFilter
from app.retrieval.weaviate import WeaviateVectorIndex, WeaviateWriteError
from app.retrieval.weaviate_schema import weaviate_tenant
from tests.fakes import HashEmbedder
from tests.unit.test_weaviate_schema import evaluate

EMB = HashEmbedder()


@dataclass
class FakeCollection:
    log: list[tuple[str, Any]] = field(default_factory=list)
    store: dict[str, dict[str, tuple[dict[str, Any], list[float]]]] = field(default_factory=dict)
    reject: list[str] = field(default_factory=list)  # messages of objects to fail next
    request_errors: list[Exception] = field(default_factory=list)  # raised by next requests

    @property
    def tenants(self) -> Any:
        def create(tenants: list[Any]) -> None:
            for t in tenants:
                self.log.append(("create_tenant", t.name))
                self.store.setdefault(t.name, {})

        return SimpleNamespace(
            exists=lambda name: name in self.store, create=create, get=lambda: dict(self.store)
        )

    def with_tenant(self, name: str) -> Any:
        assert name in self.store, f"tenant {name!r} used before it was created"
        objects = self.store[name]

        def insert_many(batch: list[DataObject[Any, Any]]) -> Any:
            self.log.append(("insert_many", len(batch)))
            if self.request_errors:
                raise self.request_errors.pop(0)
            errors: dict[int, Any] = {}
            for i, obj in enumerate(batch):
                if self.reject:
                    errors[i] = SimpleNamespace(message=self.reject.pop(0))
                    continue
                self.log.append(("write", obj.properties["chunk_id"]))
                objects[str(obj.uuid)] = (obj.properties, obj.vector)
            return SimpleNamespace(errors=errors)

        def delete_many(where: Any) -> Any:
            rest = _FilterToREST.convert(where)
            self.log.append(("delete_many", rest))
            doomed = [u for u, (p, _) in objects.items() if evaluate(rest, p)]
            for u in doomed:
                del objects[u]
            return SimpleNamespace(matches=len(doomed), successful=len(doomed), failed=0)

        def near_vector(near_vector: list[float], limit: int, filters: Any, **_: Any) -> Any:
            rest = _FilterToREST.convert(filters)
            self.log.append(("near_vector", rest))
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
            n = sum(1 for p, _ in objects.values() if rest is None or evaluate(rest, p))
            return SimpleNamespace(total_count=n)

        return SimpleNamespace(
            data=SimpleNamespace(insert_many=insert_many, delete_many=delete_many),
            query=SimpleNamespace(near_vector=near_vector),
            aggregate=SimpleNamespace(over_all=over_all),
        )


@dataclass
class FakeClient:
    collection: FakeCollection = field(default_factory=FakeCollection)
    created: list[dict[str, Any]] = field(default_factory=list)
    exists_error: Exception | None = None

    @property
    def collections(self) -> Any:
        def exists(name: str) -> bool:
            if self.exists_error is not None:
                error, self.exists_error = self.exists_error, None
                raise error
            return bool(self.created)

        return SimpleNamespace(
            exists=exists,
            create=lambda **cfg: self.created.append(cfg),
            get=lambda name: self.collection,
        )


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
    assert [c["name"] for c in client.created] == ["RagentTest"]


def test_tenants_are_created_on_demand_and_unknown_ones_read_as_empty() -> None:
    client = FakeClient()
    index = _index(client)
    flt = SearchFilter("acme/eu", frozenset({"hr"}))
    assert index.search(EMB.embed_query("x"), flt, 5) == []
    assert index.count(flt) == 0
    assert index.delete_document("acme/eu", "d1") == 0
    assert client.collection.log == []  # nothing was queried or created for reads

    chunks = [_chunk("a"), _chunk("b", acl=("hr",)), _chunk("c", tenant="t2")]
    index.upsert(chunks, _vecs(chunks))
    index.upsert(chunks[:1], _vecs(chunks[:1]))
    creates = [name for op, name in client.collection.log if op == "create_tenant"]
    assert creates == [weaviate_tenant("acme/eu"), "t2"]
    hits = index.search(EMB.embed_query("text about b"), flt, 5)
    assert [h.chunk for h in hits] == [chunks[1], chunks[0]]
    assert hits[0].score == pytest.approx(1.0)
    assert index.count() == 3 and index.count(flt) == 2
    assert index.count(SearchFilter("acme/eu")) == 1


def test_objects_are_keyed_by_chunk_id() -> None:
    client = FakeClient()
    index = _index(client)
    index.upsert([_chunk("a")], _vecs([_chunk("a")]))
    index.upsert([_chunk("a")], _vecs([_chunk("a")]))
    assert index.count() == 1


def test_replace_writes_before_it_deletes_stale_chunks() -> None:
    client = FakeClient()
    index = _index(client)
    old = [_chunk("a"), _chunk("b"), _chunk("keep", doc="d2")]
    index.upsert(old, _vecs(old))
    client.collection.log.clear()
    new = [_chunk("b"), _chunk("c")]
    assert index.replace_document("acme/eu", "d1", new, _vecs(new)) == 1  # only "a" was stale
    ops = [op for op, _ in client.collection.log]
    assert ops == ["insert_many", "write", "write", "delete_many", "delete_many"]  # writes first
    where = client.collection.log[3][1]
    assert {"operator": "NotEqual", "path": ["generation"]}.items() <= where["operands"][1].items()
    ids = {
        h.chunk.chunk_id for h in index.search(EMB.embed_query("text"), SearchFilter("acme/eu"), 9)
    }
    assert ids == {"b", "c", "keep"}
    with pytest.raises(ValueError):
        index.replace_document("acme/eu", "d1", [_chunk("x", doc="d9")], _vecs([_chunk("x")]))


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
    assert len(client.created) == 1
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
