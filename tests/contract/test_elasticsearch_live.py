"""Elasticsearch-only checks against the real server: analysis, and deletes past one page.

The index contract (test_index_contract.py) holds for every keyword engine; these cover what
only the Elasticsearch adapter has: the mapping's English analyzer (on the test distribution
its ``stemmer`` and ``asciifolding`` come from scripts/engines/es-analysis, and must analyse
as a stock server does), and deletes that search and then delete page by page.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from app.retrieval.remote.elastic import ElasticKeywordIndex, connect
from app.retrieval.remote.elastic_schema import document_id
from app.retrieval.types import SearchFilter
from tests.contract.test_index_contract import T1, _chunk, _ids


@pytest.fixture
def client(elasticsearch_env: dict[str, str]) -> Iterator[Elasticsearch]:
    es = connect(
        elasticsearch_env["ELASTICSEARCH_URL"], api_key=os.environ.get("ELASTICSEARCH_API_KEY")
    )
    yield es
    es.close()


@pytest.fixture
def make_index(client: Elasticsearch) -> Iterator[Any]:
    made: list[ElasticKeywordIndex] = []

    def make(**kwargs: Any) -> ElasticKeywordIndex:
        index = ElasticKeywordIndex(
            client, f"ragent-live-{uuid.uuid4().hex[:12]}", replicas=0, **kwargs
        )
        made.append(index)
        return index

    yield make
    for index in made:
        index.drop()


def _tokens(client: Elasticsearch, index: str, text: str) -> list[str]:
    resp = client.indices.analyze(index=index, analyzer="ragent_english", text=text)
    return [t["token"] for t in resp["tokens"]]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # What a stock 9.x server's analysis-common gives for the same analyzer.
        ("John's Cafés running", ["john", "cafe", "run"]),
        ("The RUNNERS' résumés, naïvely ÜBER-fast", ["runner", "resum", "naiv", "uber", "fast"]),
        ("it is the company's policies", ["compani", "polici"]),
    ],
)
def test_the_index_analyzer_folds_stems_and_drops_possessives_and_stop_words(
    client: Elasticsearch, make_index: Any, text: str, tokens: list[str]
) -> None:
    index = make_index()
    assert _tokens(client, index.index, text) == tokens


def test_accented_and_inflected_words_find_each_other(make_index: Any) -> None:
    index = make_index()
    index.upsert(
        [
            _chunk("cafe", "The cafés of Zürich"),
            _chunk("run", "Running a company's audit", doc="d2"),
        ]
    )
    flt = SearchFilter(T1)
    assert _ids(index.search("cafe zurich", flt, 5)) == ["cafe"]
    assert _ids(index.search("Companies RUNS audits", flt, 5)) == ["run"]


def test_replace_deletes_stale_chunks_past_one_page(make_index: Any) -> None:
    index = make_index(chunk_size=3)  # bulk and search pages of 3
    old = [_chunk(f"c{i:02d}", f"revenue line {i}") for i in range(10)]
    index.upsert(old)
    assert index.replace_document(T1, "d1", [_chunk("c03", "restated revenue")]) == 9
    assert _ids(index.search("revenue", SearchFilter(T1), 20)) == ["c03"]
    assert index.count() == 1
    assert index.delete_document(T1, "d1") == 1
    assert index.count() == 0


def test_a_chunk_rewritten_while_stale_chunks_are_deleted_is_kept(
    make_index: Any, client: Elasticsearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index()
    index.upsert([_chunk("a", "old alpha"), _chunk("b", "old beta")])
    search = client.search
    rewritten = _chunk("b", "beta rewritten meanwhile")

    def search_then_rewrite(**kwargs: Any) -> Any:
        resp = search(**kwargs)
        if kwargs.get("seq_no_primary_term"):  # the delete's search: a writer slips in
            monkeypatch.setattr(client, "search", search)
            index.upsert([rewritten])
        return resp

    monkeypatch.setattr(client, "search", search_then_rewrite)
    # The replace keeps only "n"; "b" was found stale, then rewritten before the delete:
    # the delete leaves the rewritten chunk in place.
    assert index.replace_document(T1, "d1", [_chunk("n", "new gamma")]) == 1
    flt = SearchFilter(T1)
    assert client.exists(index=index.index, id=document_id(T1, "b"))
    # Readers see the committed version, which lists "n" alone, until a commit lists "b".
    assert sorted(_ids(index.search("alpha beta gamma", flt, 10))) == ["n"]
    index.commit(T1, "d1", ["b", "n"])
    assert sorted(_ids(index.search("alpha beta gamma", flt, 10))) == ["b", "n"]
    assert index.search("rewritten", flt, 1)[0].chunk == rewritten
