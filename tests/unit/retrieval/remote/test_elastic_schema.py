"""Elasticsearch mapping, document and query construction, checked without a server.

A small evaluator of the query-DSL subset we emit (term, terms, bool filter/must_not) runs
the built filters against the stored documents, so the tenant/ACL semantics are proven for
every combination, not just the shape of the JSON.
"""

from __future__ import annotations

from itertools import chain, combinations
from typing import Any

import pytest

from app.retrieval.remote.elastic_schema import (
    PUBLIC,
    build_query,
    chunk_to_doc,
    doc_to_chunk,
    document_id,
    document_query,
    filter_clauses,
    index_mapping,
)
from app.retrieval.types import Chunk, SearchFilter

GROUPS = ("finance", "hr", "finance-eu")


def _chunk(cid: str, tenant: str = "t1", acl: tuple[str, ...] = (), **kw: Any) -> Chunk:
    return Chunk(cid, "d1", tenant, "a.md", f"text of {cid}", (3, 9), f"h{cid}", acl, **kw)


CHUNKS = [
    _chunk(f"{tenant}-{i}", tenant, acl)
    for tenant in ("t1", "t2")
    for i, acl in enumerate(
        [(), ("finance",), ("hr",), ("finance", "hr"), ("finance-eu",), ("nobody",)]
    )
]


def _values(doc: dict[str, Any], field: str) -> list[Any]:
    value = doc.get(field)
    return value if isinstance(value, list) else [] if value is None else [value]


def _matches(clause: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Evaluate the filter subset of the query DSL on keyword fields (exact values)."""
    ((kind, body),) = clause.items()
    if kind == "term":
        ((field, value),) = body.items()
        return value in _values(doc, field)
    if kind == "terms":
        ((field, values),) = body.items()
        return bool(set(values) & set(_values(doc, field)))
    if kind == "match_all":
        return True
    if kind == "bool":
        assert set(body) <= {"filter", "must_not"}, body
        as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
        return all(_matches(c, doc) for c in as_list(body.get("filter", []))) and not any(
            _matches(c, doc) for c in as_list(body.get("must_not", []))
        )
    raise AssertionError(f"unexpected clause {clause}")


def test_mapping_is_explicit_and_strict() -> None:
    spec = index_mapping(shards=3, replicas=0)
    assert spec["settings"]["number_of_shards"] == 3
    assert spec["settings"]["number_of_replicas"] == 0
    props = spec["mappings"]["properties"]
    assert spec["mappings"]["dynamic"] == "strict"
    for field in ("chunk_id", "doc_id", "tenant_id", "source", "acl", "content_hash"):
        assert props[field] == {"type": "keyword"}
    for field in ("span_start", "span_end", "page"):
        assert props[field] == {"type": "integer"}
    assert props["text"] == props["heading"] == {"type": "text", "analyzer": "ragent_english"}
    analysis = spec["settings"]["analysis"]
    analyzer = analysis["analyzer"]["ragent_english"]
    assert analyzer["tokenizer"] == "standard"
    assert analyzer["filter"] == [
        "ragent_possessive",
        "lowercase",
        "asciifolding",
        "ragent_stop",
        "ragent_stemmer",
    ]
    filters = analysis["filter"]
    assert filters["ragent_possessive"]["language"] == "possessive_english"
    assert filters["ragent_stemmer"]["language"] == "english"
    assert filters["ragent_stop"] == {"type": "stop", "stopwords": "_english_"}
    # Every field a document carries is mapped (strict mode would reject it otherwise).
    assert set(chunk_to_doc(_chunk("x", page=1), "g")) <= set(props)


def test_chunk_round_trips() -> None:
    full = _chunk("a", acl=("hr", "finance", "hr"), heading="Intro", page=4)
    doc = chunk_to_doc(full, "gen1")
    assert doc["acl"] == ["finance", "hr"]
    assert doc["generation"] == "gen1"
    assert (doc["span_start"], doc["span_end"], doc["page"]) == (3, 9, 4)
    assert doc_to_chunk(doc) == _chunk("a", acl=("finance", "hr"), heading="Intro", page=4)
    public = _chunk("b")
    doc = chunk_to_doc(public)
    assert doc["acl"] == [PUBLIC]
    assert "page" not in doc
    assert doc_to_chunk(doc) == public


def test_reserved_marker_cannot_be_an_acl_group() -> None:
    with pytest.raises(ValueError, match="reserved"):
        chunk_to_doc(_chunk("a", acl=(PUBLIC,)))


def test_document_ids_are_per_tenant_and_unambiguous() -> None:
    assert document_id("t1", "c") != document_id("t2", "c")
    assert document_id("a:b", "c") != document_id("a", "b:c")
    assert document_id("t1", "c") == "2:t1:c"


def test_query_scores_by_bm25_and_filters_without_scoring() -> None:
    body = build_query('wal" OR "x AND title:*', SearchFilter("t1", frozenset({"hr"})), 7)
    assert body["size"] == 7
    assert "post_filter" not in body  # never filter after ranking
    must = body["query"]["bool"]["must"]
    # multi_match analyses the text as words: no query_string syntax is ever parsed.
    assert must == {
        "multi_match": {"query": 'wal" OR "x AND title:*', "fields": ["text", "heading"]}
    }
    assert body["query"]["bool"]["filter"] == [
        {"term": {"tenant_id": "t1"}},
        {"terms": {"acl": [PUBLIC, "hr"]}},
    ]


SUBSETS = list(chain.from_iterable(combinations(GROUPS, n) for n in range(len(GROUPS) + 1)))


@pytest.mark.parametrize("groups", SUBSETS, ids=str)
@pytest.mark.parametrize("tenant", ["t1", "t2", "t3"])
def test_filter_semantics_equal_search_filter_allows(tenant: str, groups: tuple[str, ...]) -> None:
    flt = SearchFilter(tenant, frozenset(groups))
    clause = {"bool": {"filter": filter_clauses(flt)}}
    for chunk in CHUNKS:
        assert _matches(clause, chunk_to_doc(chunk)) == flt.allows(chunk), chunk
    query = build_query("x", flt, 5)["query"]["bool"]
    assert query["filter"] == filter_clauses(flt)


def test_caller_naming_the_marker_gains_nothing() -> None:
    flt = SearchFilter("t1", frozenset({PUBLIC}))
    visible = [
        c for c in CHUNKS if _matches({"bool": {"filter": filter_clauses(flt)}}, chunk_to_doc(c))
    ]
    assert [c.chunk_id for c in visible] == ["t1-0"]


def test_document_query_selects_one_documents_stale_generations() -> None:
    docs = [
        chunk_to_doc(_chunk("old"), "g1"),
        chunk_to_doc(_chunk("new"), "g2"),
        chunk_to_doc(_chunk("other-tenant", "t2"), "g1"),
        chunk_to_doc(Chunk("x", "d2", "t1", "b.md", "t", (0, 1), "h"), "g1"),
    ]
    stale = document_query("t1", "d1", "g2")
    assert [d["chunk_id"] for d in docs if _matches(stale, d)] == ["old"]
    everything = document_query("t1", "d1", None)
    assert [d["chunk_id"] for d in docs if _matches(everything, d)] == ["old", "new"]
