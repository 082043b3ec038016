"""The tenant/ACL contract and persistence of the embedded engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.keyword import keyword_terms
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.protocols import DocumentWriter, KeywordIndex, VectorIndex
from app.retrieval.types import Chunk, DocumentRecord, SearchFilter
from tests.fakes import HashEmbedder

EMB = HashEmbedder()


def _chunk(
    cid: str, text: str, *, tenant: str = "t1", doc: str = "d1", acl: tuple[str, ...] = ()
) -> Chunk:
    return Chunk(
        chunk_id=cid,
        doc_id=doc,
        tenant_id=tenant,
        source=f"{doc}.md",
        text=text,
        span=(0, len(text)),
        content_hash=cid,
        acl=acl,
    )


CORPUS = [
    _chunk("pub", "checkpoint wal sqlite public note"),
    _chunk("fin", "checkpoint wal sqlite finance secret", acl=("finance",)),
    _chunk("hr", "checkpoint wal sqlite hr secret", acl=("hr",)),
    _chunk("other", "checkpoint wal sqlite other tenant", tenant="t2", doc="d9"),
]


@pytest.fixture
def filled(index: EmbeddedIndex) -> EmbeddedIndex:
    index.upsert(CORPUS, EMB.embed_documents([c.text for c in CORPUS]))
    return index


def test_views_satisfy_the_protocols(index: EmbeddedIndex) -> None:
    assert isinstance(EmbeddedVectorIndex(index), VectorIndex)
    assert isinstance(EmbeddedKeywordIndex(index), KeywordIndex)
    assert isinstance(index, DocumentWriter)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (frozenset(), {"pub"}),
        (frozenset({"finance"}), {"pub", "fin"}),
        (frozenset({"finance", "hr"}), {"pub", "fin", "hr"}),
        (frozenset({"nobody"}), {"pub"}),
    ],
)
def test_tenant_and_acl_filters_inside_both_engines(
    filled: EmbeddedIndex, groups: frozenset[str], expected: set[str]
) -> None:
    flt = SearchFilter("t1", groups)
    keyword = {h.chunk.chunk_id for h in filled.keyword_search("checkpoint sqlite", flt, 10)}
    dense = {h.chunk.chunk_id for h in filled.vector_search(EMB.embed_query("checkpoint"), flt, 10)}
    assert keyword == expected
    assert dense == expected
    assert filled.count(flt) == len(expected)
    # k smaller than the visible set still returns only visible chunks (no post-filtering).
    assert {h.chunk.chunk_id for h in filled.keyword_search("checkpoint", flt, 1)} <= expected


def test_other_tenant_sees_only_its_own(filled: EmbeddedIndex) -> None:
    flt = SearchFilter("t2", frozenset({"finance", "hr"}))
    assert [h.chunk.chunk_id for h in filled.keyword_search("checkpoint", flt, 10)] == ["other"]
    assert [h.chunk.chunk_id for h in filled.vector_search(EMB.embed_query("wal"), flt, 10)] == [
        "other"
    ]
    assert filled.count() == 4


def test_keyword_scores_rank_the_better_match_first(index: EmbeddedIndex) -> None:
    chunks = [_chunk("a", "vacuum reclaims storage"), _chunk("b", "vacuum vacuum full reclaims")]
    index.upsert(chunks, EMB.embed_documents([c.text for c in chunks]))
    hits = index.keyword_search("vacuum full", SearchFilter("t1"), 5)
    assert [h.chunk.chunk_id for h in hits] == ["b", "a"]
    assert hits[0].score > hits[1].score


def test_query_syntax_is_neutralised(filled: EmbeddedIndex) -> None:
    assert keyword_terms('wal" OR "x AND title:wal') == "wal or x and title"
    assert filled.keyword_search('NEAR(") AND *', SearchFilter("t1"), 5) == []
    hits = filled.keyword_search('"WAL" AND (checkpoint) tenant:t2', SearchFilter("t1"), 5)
    assert [h.chunk.chunk_id for h in hits] == ["pub"]
    assert filled.keyword_search("", SearchFilter("t1"), 5) == []


def test_replace_document_is_atomic(filled: EmbeddedIndex) -> None:
    record = DocumentRecord("t1", "d1", "d1.md", "h2", "hash-256")
    new = [_chunk("new1", "vacuum full rewrites the table")]
    bad_vectors = np.zeros((2, EMB.dim), np.float32)  # wrong shape: the write must fail
    with pytest.raises(ValueError):
        filled.replace_document(record, new, bad_vectors)
    assert filled.count(SearchFilter("t1", frozenset({"finance", "hr"}))) == 3
    assert filled.document("t1", "d1") is None

    filled.replace_document(record, new, EMB.embed_documents([new[0].text]))
    flt = SearchFilter("t1", frozenset({"finance", "hr"}))
    assert filled.count(flt) == 1
    assert [h.chunk.chunk_id for h in filled.keyword_search("vacuum", flt, 5)] == ["new1"]
    assert filled.keyword_search("checkpoint", flt, 5) == []
    assert filled.document("t1", "d1") == DocumentRecord(
        "t1", "d1", "d1.md", "h2", "hash-256", chunk_ids=("new1",)
    )
    assert filled.documents("t1") == [filled.document("t1", "d1")]
    assert filled.documents("t2") == []


def test_keyword_upsert_keeps_existing_vectors(filled: EmbeddedIndex) -> None:
    EmbeddedKeywordIndex(filled).upsert([CORPUS[0]])
    hits = filled.vector_search(EMB.embed_query("public note"), SearchFilter("t1"), 1)
    assert hits[0].chunk.chunk_id == "pub"


def test_persists_and_sees_other_writers(filled: EmbeddedIndex, tmp_path: Path) -> None:
    path = next(p for p in tmp_path.rglob("index.sqlite"))
    reader = EmbeddedIndex(path, dim=EMB.dim)
    try:
        flt = SearchFilter("t1")
        assert reader.count(flt) == 1
        assert reader.vector_search(EMB.embed_query("public"), flt, 1)[0].chunk.chunk_id == "pub"
        filled.upsert(
            [_chunk("late", "late public arrival")], EMB.embed_documents(["late public arrival"])
        )
        ids = {h.chunk.chunk_id for h in reader.vector_search(EMB.embed_query("late"), flt, 5)}
        assert "late" in ids
    finally:
        reader.close()


def test_delete_document_removes_from_both(filled: EmbeddedIndex) -> None:
    assert filled.delete_document("t1", "d1") == 3
    flt = SearchFilter("t1", frozenset({"finance", "hr"}))
    assert filled.keyword_search("checkpoint", flt, 5) == []
    assert filled.vector_search(EMB.embed_query("checkpoint"), flt, 5) == []
    assert filled.count() == 1
