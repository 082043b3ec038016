"""Commit markers on the real engines: readers see one whole version of a document.

A replace writes the new chunks hidden, switches the document's marker, then deletes the
stale chunks (:mod:`app.retrieval.remote.commits`). Each test stops it, or a delete, between
phases by calling the adapter's phase methods itself, the way a writer that died there
would have left the engine, and checks what every search path returns: Elasticsearch's
BM25 search; Weaviate's vector search and its own hybrid query, BM25 and vectors alike.
Pages are two chunks long, so listing or deleting a document's few chunks takes several.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import pytest

from app.retrieval.remote.elastic import ElasticKeywordIndex
from app.retrieval.remote.weaviate import WeaviateVectorIndex
from app.retrieval.types import Chunk, Hit, SearchFilter
from tests.contract.conftest import EMB
from tests.contract.test_index_contract import T1, T2, _chunk, _vectors

WORD = "revenue"  # every chunk has it, so every search ranks every chunk of the tenant


def _doc(doc: str, *ids: str, tenant: str = T1) -> list[Chunk]:
    # As the ingester's ids (a hash of document and text): the same id, the same text.
    return [_chunk(c, f"{WORD} {doc} {c}", doc=doc, tenant=tenant) for c in ids]


@dataclass
class Engine:
    """One engine's adapter behind the calls a writer makes, vectors made here."""

    name: str
    index: ElasticKeywordIndex | WeaviateVectorIndex

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if isinstance(self.index, WeaviateVectorIndex):
            self.index.upsert(chunks, _vectors(chunks))
        else:
            self.index.upsert(chunks)

    def write_generation(
        self, tenant: str, doc: str, chunks: Sequence[Chunk], generation: str
    ) -> None:
        if isinstance(self.index, WeaviateVectorIndex):
            self.index.write_generation(tenant, doc, chunks, _vectors(chunks), generation)
        else:
            self.index.write_generation(tenant, doc, chunks, generation)

    def replace(self, doc: str, chunks: Sequence[Chunk], tenant: str = T1) -> int:
        if isinstance(self.index, WeaviateVectorIndex):
            return self.index.replace_document(tenant, doc, chunks, _vectors(chunks))
        return self.index.replace_document(tenant, doc, chunks)

    def interrupted_replace(self, doc: str, chunks: Sequence[Chunk], tenant: str = T1) -> str:
        """A replace that dies after writing its chunks, before the commit; its generation."""
        generation = uuid.uuid4().hex
        self.index.begin_replace(tenant, doc)
        self.write_generation(tenant, doc, chunks, generation)
        return generation

    def search(self, flt: SearchFilter, k: int = 50) -> list[Hit]:
        """Every search path's hits, checked to agree; Elasticsearch's or Weaviate's vector ones."""
        if not isinstance(self.index, WeaviateVectorIndex):
            return self.index.search(WORD, flt, k)
        vector = EMB.embed_query(WORD)
        hits = self.index.search(vector, flt, k)
        fusions: tuple[Literal["relative", "ranked"], ...] = ("relative", "ranked")
        for fusion in fusions:
            for alpha in (0.0, 0.5, 1.0):  # BM25 alone, both, vectors alone
                hybrid = self.index.hybrid(WORD, vector, flt, k, alpha=alpha, fusion=fusion)
                assert {h.chunk for h in hybrid} == {h.chunk for h in hits}, (fusion, alpha)
        return hits

    def visible(self, tenant: str = T1) -> set[str]:
        """The chunk ids that the tenant's searches return."""
        return {h.chunk.chunk_id for h in self.search(SearchFilter(tenant))}

    def stored(self) -> int:
        """How many chunks the engine holds, visible or not."""
        return self.index.count()


@pytest.fixture(params=["elasticsearch", "weaviate"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    name = uuid.uuid4().hex[:12]
    if request.param == "elasticsearch":
        from app.retrieval.remote.elastic import connect

        env = request.getfixturevalue("elasticsearch_env")
        es = connect(env["ELASTICSEARCH_URL"], api_key=os.environ.get("ELASTICSEARCH_API_KEY"))
        index = ElasticKeywordIndex(es, f"ragent-commits-{name}", chunk_size=2, replicas=0)
        # Writes wait for a refresh ("wait_for"); the default second makes each a second.
        es.indices.put_settings(index=index.index, settings={"refresh_interval": "50ms"})
        try:
            yield Engine("elasticsearch", index)
        finally:
            index.drop()
            es.close()
        return
    from app.retrieval.remote.weaviate import connect as connect_weaviate

    env = request.getfixturevalue("weaviate_env")
    wv = connect_weaviate(
        env["WEAVIATE_URL"],
        grpc_port=int(env["WEAVIATE_GRPC_PORT"]),
        api_key=os.environ.get("WEAVIATE_API_KEY"),
    )
    collection = WeaviateVectorIndex(wv, f"RagentCommits{name}", dim=EMB.dim, batch_size=2)
    try:
        yield Engine("weaviate", collection)
    finally:
        collection.drop()
        wv.close()


def test_a_replace_interrupted_before_its_commit_shows_the_old_version(engine: Engine) -> None:
    old = _doc("d1", "a", "b", "c")
    engine.replace("d1", old)
    engine.replace("d2", _doc("d2", "x"))
    engine.interrupted_replace("d1", _doc("d1", "b", "d", "e"))  # "b" unchanged
    assert engine.stored() == 6  # "d" and "e" were written...
    # ...but readers see exactly the old version: its only-old "a" and "c" included, the
    # unchanged "b" as it was, the new-only "d" and "e" nowhere.
    hits = engine.search(SearchFilter(T1))
    assert sorted(h.chunk.chunk_id for h in hits) == ["a", "b", "c", "x"]
    assert {h.chunk for h in hits if h.chunk.doc_id == "d1"} == set(old)

    # The next replace of the document finishes the job, leftovers included.
    assert engine.replace("d1", _doc("d1", "b", "f")) == 4  # "a", "c", "d", "e"
    assert engine.visible() == {"b", "f", "x"}
    assert engine.stored() == 3


def test_a_new_document_shows_nothing_until_its_commit(engine: Engine) -> None:
    engine.replace("d1", _doc("d1", "a"))
    new = _doc("d2", "n1", "n2", "n3")
    generation = engine.interrupted_replace("d2", new)
    assert engine.stored() == 4
    assert engine.visible() == {"a"}
    engine.index.commit(T1, "d2", [c.chunk_id for c in new])
    assert engine.visible() == {"a", "n1", "n2", "n3"}
    assert engine.index.delete_stale(T1, "d2", generation) == 0


def test_after_the_commit_exactly_the_new_version_shows_before_stale_chunks_go(
    engine: Engine,
) -> None:
    engine.replace("d1", _doc("d1", "a", "b", "c"))
    new = _doc("d1", "b", "d", "e")
    generation = engine.interrupted_replace("d1", new)
    engine.index.commit(T1, "d1", [c.chunk_id for c in new])
    # The stale "a" and "c" are still stored (a writer that died here left them), hidden.
    assert engine.stored() == 5
    hits = engine.search(SearchFilter(T1))
    assert {h.chunk for h in hits} == set(new)
    assert engine.index.delete_stale(T1, "d1", generation) == 2
    assert engine.stored() == 3
    assert engine.visible() == {"b", "d", "e"}


def test_a_delete_interrupted_after_emptying_the_marker_hides_the_whole_document(
    engine: Engine,
) -> None:
    engine.replace("d1", _doc("d1", "a", "b", "c"))
    engine.replace("d2", _doc("d2", "x"))
    # delete_document's first step: the committed version becomes "no chunks".
    engine.index.commit(T1, "d1", [])
    assert engine.stored() == 4
    assert engine.visible() == {"x"}
    # Done again in full, the delete removes the chunks and then the marker: a document
    # written afterwards without a marker is visible again.
    assert engine.index.delete_document(T1, "d1") == 3
    assert engine.stored() == 1
    engine.upsert(_doc("d1", "z"))
    assert engine.visible() == {"x", "z"}


def test_documents_without_a_marker_stay_visible_through_an_interrupted_replace(
    engine: Engine,
) -> None:
    old = _doc("legacy", "a", "b", "c", "d", "e")  # more than two pages
    engine.upsert(old)  # as before commit markers existed: no marker
    engine.upsert(_doc("other", "o", tenant=T2))
    engine.replace("d1", _doc("d1", "m"))  # markers elsewhere change nothing for them
    assert engine.visible() == {"a", "b", "c", "d", "e", "m"}
    assert engine.visible(T2) == {"o"}

    engine.interrupted_replace("legacy", _doc("legacy", "a", "new"))
    hits = engine.search(SearchFilter(T1))
    assert {h.chunk for h in hits if h.chunk.doc_id == "legacy"} == set(old)  # still whole

    assert engine.replace("legacy", _doc("legacy", "a", "new")) == 4
    assert engine.visible() == {"a", "new", "m"}
    assert engine.visible(T2) == {"o"}


def test_markers_of_one_tenant_do_not_hide_another_tenants_document(engine: Engine) -> None:
    # The same document id in two tenants; only T1's is being replaced.
    engine.replace("d1", _doc("d1", "a", "b"))
    engine.replace("d1", _doc("d1", "a", "t2", tenant=T2), tenant=T2)
    engine.interrupted_replace("d1", _doc("d1", "c"))
    assert engine.visible() == {"a", "b"}
    assert engine.visible(T2) == {"a", "t2"}
    engine.index.commit(T1, "d1", ["c"])
    assert engine.visible() == {"c"}
    assert engine.visible(T2) == {"a", "t2"}


def test_a_dropped_store_can_be_made_again_and_written(engine: Engine) -> None:
    engine.replace("d1", _doc("d1", "a"))
    engine.index.drop()  # the chunks and the markers
    if isinstance(engine.index, WeaviateVectorIndex):
        engine.index.ensure_collection()
    else:
        engine.index.ensure_index(replicas=0)
    assert engine.stored() == 0
    engine.replace("d1", _doc("d1", "b"))
    assert engine.visible() == {"b"}
