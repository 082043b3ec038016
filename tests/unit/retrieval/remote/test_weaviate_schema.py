"""Weaviate schema, object mapping and filter construction, checked without a server.

The filters are rendered with the client's own converter to the wire form Weaviate
receives, then evaluated here against stored objects, so the tenant/ACL semantics are
proven for every combination of groups.
"""

from __future__ import annotations

from itertools import chain, combinations
from typing import Any

import pytest
from weaviate.classes.config import DataType, Tokenization, VectorDistances, Vectorizers
from weaviate.collections.classes.config import _CollectionConfigCreate
from weaviate.collections.filters import _FilterToREST

from app.retrieval.remote.weaviate_schema import (
    PUBLIC,
    SEARCHABLE,
    build_filter,
    chunk_properties,
    collection_config,
    collection_properties,
    document_filter,
    object_to_chunk,
    weaviate_tenant,
)
from app.retrieval.types import Chunk, SearchFilter

GROUPS = ("finance", "hr", "finance-eu")


def evaluate(rest: dict[str, Any], props: dict[str, Any]) -> bool:
    """Evaluate a REST-form Weaviate filter on ``field``-tokenized text properties."""
    op = rest["operator"]
    if op in ("And", "Or"):
        results = [evaluate(o, props) for o in rest["operands"]]
        return all(results) if op == "And" else any(results)
    (path,) = rest["path"]
    value = props.get(path)
    values = value if isinstance(value, list) else [value]
    if op == "Equal":
        return rest["valueText"] in values
    if op == "NotEqual":
        return rest["valueText"] not in values
    if op == "ContainsAny":
        return bool(set(rest["valueTextArray"]) & set(values))
    raise AssertionError(f"unexpected operator {op}")


def _chunk(cid: str, tenant: str = "t1", acl: tuple[str, ...] = (), **kw: Any) -> Chunk:
    return Chunk(cid, "d1", tenant, "a.md", f"text of {cid}", (2, 8), f"h{cid}", acl, **kw)


CHUNKS = [
    _chunk(f"{tenant}-{i}", tenant, acl)
    for tenant in ("t1", "t2")
    for i, acl in enumerate([(), ("finance",), ("hr",), ("finance", "hr"), ("finance-eu",)])
]
SUBSETS = list(chain.from_iterable(combinations(GROUPS, n) for n in range(len(GROUPS) + 1)))


def test_collection_uses_our_vectors_cosine_and_multi_tenancy() -> None:
    cfg = collection_config("RagentChunk")
    payload = _CollectionConfigCreate(**cfg)._to_dict()  # what the client would send
    assert payload["class"] == "RagentChunk"
    assert payload["multiTenancyConfig"] == {
        "enabled": True,
        "autoTenantCreation": True,
        "autoTenantActivation": True,
    }
    (vector,) = payload["vectorConfig"].values()
    assert vector["vectorizer"] == {Vectorizers.NONE.value: {}}
    assert vector["vectorIndexType"] == "hnsw"
    assert vector["vectorIndexConfig"]["distance"] == VectorDistances.COSINE.value


def test_properties_mirror_chunk_and_filters_match_whole_values() -> None:
    props = {p.name: p for p in collection_properties()}
    assert set(chunk_properties(_chunk("a", page=1), "g")) == set(props)
    for name in ("chunk_id", "doc_id", "tenant_id", "source", "content_hash", "generation", "acl"):
        assert props[name].tokenization == Tokenization.FIELD  # "finance-eu" is one token
        assert props[name].indexFilterable is True
    assert props["acl"].dataType == DataType.TEXT_ARRAY
    for name in ("span_start", "span_end", "page"):
        assert props[name].dataType == DataType.INT
    assert props["text"].dataType == props["heading"].dataType == DataType.TEXT


def test_text_and_heading_have_a_bm25_index_for_weaviate_hybrid() -> None:
    props = {p.name: p for p in collection_properties()}
    assert SEARCHABLE == ("text", "heading")
    for name in SEARCHABLE:
        assert props[name].indexSearchable is True
        assert props[name].tokenization == Tokenization.WORD
    searchable = {name for name, p in props.items() if p.indexSearchable is not False}
    assert searchable == set(SEARCHABLE)  # ids and ACL groups are never BM25 terms
    payload = _CollectionConfigCreate(**collection_config("RagentChunk"))._to_dict()
    inverted = payload["invertedIndexConfig"]
    assert inverted["bm25"] == {"b": 0.75, "k1": 1.2}  # the Elasticsearch adapter's
    assert inverted["stopwords"]["preset"] == "en"


def test_chunk_round_trips() -> None:
    full = _chunk("a", acl=("hr", "finance"), heading="Intro", page=4)
    props = chunk_properties(full, "gen")
    assert props["acl"] == ["finance", "hr"]
    assert props["generation"] == "gen"
    assert object_to_chunk(props) == _chunk("a", acl=("finance", "hr"), heading="Intro", page=4)
    public = _chunk("b")
    props = chunk_properties(public)
    assert props["acl"] == [PUBLIC] and "page" not in props
    assert object_to_chunk(props | {"page": None, "heading": None}) == public
    with pytest.raises(ValueError, match="reserved"):
        chunk_properties(_chunk("c", acl=(PUBLIC, "hr")))


def test_tenant_names_are_valid_and_distinct() -> None:
    assert weaviate_tenant("acme_1-eu") == "acme_1-eu"
    names = {weaviate_tenant(t) for t in ("acme/eu", "acme eu", "", "x" * 65, "h--abc", "é")}
    assert len(names) == 6
    for name in names:
        assert name.startswith("h--") and len(name) <= 64 and name.replace("-", "").isalnum()
    assert weaviate_tenant("acme/eu") == weaviate_tenant("acme/eu")


@pytest.mark.parametrize("groups", SUBSETS, ids=str)
@pytest.mark.parametrize("tenant", ["t1", "t2", "t3"])
def test_filter_semantics_equal_search_filter_allows(tenant: str, groups: tuple[str, ...]) -> None:
    flt = SearchFilter(tenant, frozenset(groups))
    rest = _FilterToREST.convert(build_filter(flt))
    for chunk in CHUNKS:
        assert evaluate(rest, chunk_properties(chunk)) == flt.allows(chunk), chunk


def test_filter_wire_form() -> None:
    rest = _FilterToREST.convert(build_filter(SearchFilter("t1", frozenset({"hr", PUBLIC}))))
    assert rest == {
        "operator": "And",
        "operands": [
            {"operator": "Equal", "path": ["tenant_id"], "valueText": "t1"},
            {"operator": "ContainsAny", "path": ["acl"], "valueTextArray": [PUBLIC, "hr"]},
        ],
    }


def test_document_filter_selects_stale_generations_of_one_document() -> None:
    objects = [
        chunk_properties(_chunk("old"), "g1"),
        chunk_properties(_chunk("new"), "g2"),
        chunk_properties(_chunk("other", "t2"), "g1"),
        chunk_properties(Chunk("x", "d2", "t1", "b.md", "t", (0, 1), "h"), "g1"),
    ]
    stale = _FilterToREST.convert(document_filter("t1", "d1", "g2"))
    assert [o["chunk_id"] for o in objects if evaluate(stale, o)] == ["old"]
    whole = _FilterToREST.convert(document_filter("t1", "d1", None))
    assert [o["chunk_id"] for o in objects if evaluate(whole, o)] == ["old", "new"]
