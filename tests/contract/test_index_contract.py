"""One contract for every index engine: tenant and ACL filters hold inside the query.

Keyword tests run on embedded + Elasticsearch, vector tests on embedded + Weaviate (live
engines only when their URL is set; see conftest). The corpus is built so that chunks the
caller may NOT see match the query best: an engine that filtered after ranking would return
fewer than ``k`` hits, and one that did not filter would return foreign chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, combinations

import pytest

from app.retrieval.protocols import Vector
from app.retrieval.types import Chunk, Hit, SearchFilter
from tests.contract.conftest import EMB, KeywordBackend, VectorBackend

T1, T2 = "t1", "acme/eu"  # T2 is not a valid Weaviate tenant name: it exercises the mapping
GROUPS = ("finance", "hr", "nobody")


def _chunk(
    cid: str,
    text: str,
    *,
    tenant: str = T1,
    doc: str = "d1",
    acl: tuple[str, ...] = (),
    heading: str = "",
    page: int | None = None,
) -> Chunk:
    return Chunk(
        cid, doc, tenant, f"docs/{doc}.md", text, (0, len(text)), f"h-{cid}", acl, heading, page
    )


SECRET = "revenue revenue revenue quarterly"
CORPUS = [
    _chunk("t1-pub", "quarterly revenue report for the whole company"),
    _chunk("t1-fin", f"{SECRET} finance forecast", acl=("finance",)),
    _chunk("t1-hr", f"{SECRET} salaries", acl=("hr",), heading="People", page=2),
    _chunk("t1-both", f"{SECRET} bonus pool", doc="d2", acl=("finance", "hr")),
    _chunk("t1-pub2", "quarterly revenue summary", doc="d2", heading="Overview", page=3),
    # Same doc id as T1's d1, in another tenant, and the best matches of all.
    _chunk("t2-pub", f"revenue {SECRET} other tenant", tenant=T2),
    _chunk("t2-fin", f"revenue {SECRET} other finance", tenant=T2, acl=("finance",)),
]
QUERY = "revenue quarterly finance salaries bonus"


def _filters() -> Iterable[SearchFilter]:
    subsets = chain.from_iterable(combinations(GROUPS, n) for n in range(len(GROUPS) + 1))
    for groups in subsets:
        for tenant in (T1, T2):
            yield SearchFilter(tenant, frozenset(groups))


FILTERS = list(_filters())


def _filter_id(flt: SearchFilter) -> str:
    return f"{flt.tenant_id}:{'+'.join(sorted(flt.groups)) or 'no-groups'}"


def _ids(hits: Sequence[Hit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def _visible(flt: SearchFilter, corpus: Sequence[Chunk] = CORPUS) -> set[str]:
    return {c.chunk_id for c in corpus if flt.allows(c)}


def _vectors(chunks: Sequence[Chunk]) -> Vector:
    return EMB.embed_documents([c.text for c in chunks])


@pytest.fixture
def keywords(keyword_backend: KeywordBackend) -> KeywordBackend:
    keyword_backend.index.upsert(CORPUS)
    return keyword_backend


@pytest.fixture
def vectors(vector_backend: VectorBackend) -> VectorBackend:
    vector_backend.index.upsert(CORPUS, _vectors(CORPUS))
    return vector_backend


def _assert_ranked(hits: Sequence[Hit]) -> None:
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


# -- keyword contract (embedded, Elasticsearch) -----------------------------------------


def test_keyword_upsert_search_count(keywords: KeywordBackend) -> None:
    index = keywords.index
    assert index.count() == len(CORPUS)
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    assert index.count(flt) == 5
    hits = index.search("summary", flt, 10)
    assert _ids(hits) == ["t1-pub2"]
    assert hits[0].chunk == CORPUS[4]  # every field round-trips
    hits = index.search("salaries", flt, 10)
    assert hits[0].chunk == CORPUS[2]
    ranked = index.search("revenue", flt, 10)
    _assert_ranked(ranked)
    assert set(_ids(ranked)) == _visible(flt)


@pytest.mark.parametrize("flt", FILTERS, ids=_filter_id)
def test_keyword_filters_are_inside_the_query(keywords: KeywordBackend, flt: SearchFilter) -> None:
    visible = _visible(flt)
    assert set(_ids(keywords.index.search(QUERY, flt, 50))) == visible
    assert keywords.index.count(flt) == len(visible)
    assert keywords.index.count(flt, limit=1) == min(len(visible), 1)
    assert keywords.index.count(flt, limit=2) == min(len(visible), 2)
    for k in range(1, len(visible) + 1):
        hits = keywords.index.search(QUERY, flt, k)
        assert len(hits) == k  # the hidden best matches did not eat the top k
        assert set(_ids(hits)) <= visible


def test_keyword_tenant_isolation(keywords: KeywordBackend) -> None:
    everything = frozenset(GROUPS) | {"finance", "hr"}
    for word in ("company", "salaries", "bonus", "summary"):  # words only T1 has
        assert keywords.index.search(word, SearchFilter(T2, everything), 10) == []
    assert keywords.index.search("tenant", SearchFilter(T1, everything), 10) == []
    for near in ("t", "T1", "t1 ", "acme", ""):
        assert keywords.index.search("revenue", SearchFilter(near, everything), 10) == []
        assert keywords.index.count(SearchFilter(near, everything)) == 0
        assert keywords.index.count(SearchFilter(near, everything), limit=1) == 0


def test_keyword_delete_document(keywords: KeywordBackend) -> None:
    assert keywords.index.delete_document(T2, "d1") == 2  # T1's d1 shares the doc id
    assert keywords.index.delete_document(T1, "d1") == 3
    assert keywords.index.delete_document(T1, "d1") == 0
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    assert set(_ids(keywords.index.search(QUERY, flt, 10))) == {"t1-both", "t1-pub2"}
    assert keywords.index.count() == 2


def test_keyword_replace_document(keywords: KeywordBackend) -> None:
    new = [
        _chunk("t1-fin", "revenue restated after the audit", acl=("finance",)),  # same id
        _chunk("t1-new", "revenue guidance raised"),
    ]
    keywords.replace(T1, "d1", new)
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    assert set(_ids(keywords.index.search("revenue", flt, 10))) == {
        "t1-fin",
        "t1-new",
        "t1-both",
        "t1-pub2",
    }
    assert _ids(keywords.index.search("audit", flt, 10)) == ["t1-fin"]
    assert keywords.index.search("salaries forecast company", flt, 10) == []  # stale gone
    assert _ids(keywords.index.search("guidance", SearchFilter(T1), 10)) == ["t1-new"]
    assert keywords.index.count(flt) == 4
    assert keywords.index.count(SearchFilter(T2, frozenset({"finance"}))) == 2


@pytest.mark.parametrize(
    "query",
    [
        'revenue" OR "x',
        'NEAR(") AND *',
        "+revenue -report",
        "text:revenue^9",
        '{"match_all":{}}',
        "revenue)",
        "\\",
        "réVenue*",
        "' OR 1=1 --",
    ],
)
def test_keyword_query_syntax_is_safe(keywords: KeywordBackend, query: str) -> None:
    flt = SearchFilter(T1)
    hits = keywords.index.search(query, flt, 10)
    assert set(_ids(hits)) <= _visible(flt)


def test_keyword_query_without_words_finds_nothing(keywords: KeywordBackend) -> None:
    for query in ("", "   ", '"" *', "()"):
        assert keywords.index.search(query, SearchFilter(T1, frozenset(GROUPS)), 10) == []
    assert set(_ids(keywords.index.search('revenue" OR "x', SearchFilter(T1), 10))) == {
        "t1-pub",
        "t1-pub2",
    }


# -- vector contract (embedded, Weaviate) -----------------------------------------------


def test_vector_upsert_search_count(vectors: VectorBackend) -> None:
    assert vectors.index.count() == len(CORPUS)
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    assert vectors.index.count(flt) == 5
    for chunk in CORPUS[:5]:
        hits = vectors.index.search(EMB.embed_query(chunk.text), flt, 3)
        assert hits[0].chunk == chunk  # nearest is itself, every field round-trips
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        _assert_ranked(hits)


@pytest.mark.parametrize("flt", FILTERS, ids=_filter_id)
def test_vector_filters_are_inside_the_query(vectors: VectorBackend, flt: SearchFilter) -> None:
    visible = _visible(flt)
    query = EMB.embed_query(SECRET)  # the hidden chunks are the nearest
    assert set(_ids(vectors.index.search(query, flt, 50))) == visible
    assert vectors.index.count(flt) == len(visible)
    assert vectors.index.count(flt, limit=1) == min(len(visible), 1)
    for k in range(1, len(visible) + 1):
        hits = vectors.index.search(query, flt, k)
        assert len(hits) == k
        assert set(_ids(hits)) <= visible


def test_vector_tenant_isolation(vectors: VectorBackend) -> None:
    everything = frozenset(GROUPS)
    for chunk in CORPUS:
        other = T2 if chunk.tenant_id == T1 else T1
        hits = vectors.index.search(
            EMB.embed_query(chunk.text), SearchFilter(other, everything), 10
        )
        assert all(h.chunk.tenant_id == other for h in hits)
    for near in ("t", "T1", "acme", ""):
        assert (
            vectors.index.search(EMB.embed_query(SECRET), SearchFilter(near, everything), 5) == []
        )
        assert vectors.index.count(SearchFilter(near, everything)) == 0


def test_vector_delete_document(vectors: VectorBackend) -> None:
    assert vectors.index.delete_document(T2, "d1") == 2
    assert vectors.index.delete_document(T1, "d1") == 3
    assert vectors.index.delete_document(T1, "d1") == 0
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    assert set(_ids(vectors.index.search(EMB.embed_query(SECRET), flt, 10))) == {
        "t1-both",
        "t1-pub2",
    }
    assert vectors.index.count() == 2


def test_vector_replace_document(vectors: VectorBackend) -> None:
    new = [
        _chunk("t1-fin", "revenue restated after the audit", acl=("finance",)),
        _chunk("t1-new", "revenue guidance raised"),
    ]
    vectors.replace(T1, "d1", new, _vectors(new))
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    ids = set(_ids(vectors.index.search(EMB.embed_query("revenue"), flt, 10)))
    assert ids == {"t1-fin", "t1-new", "t1-both", "t1-pub2"}
    hit = vectors.index.search(EMB.embed_query("revenue restated after the audit"), flt, 1)[0]
    assert hit.chunk == new[0]
    assert vectors.index.count(flt) == 4
    assert vectors.index.count(SearchFilter(T2, frozenset({"finance"}))) == 2
