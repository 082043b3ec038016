"""Weaviate-only checks against the real server: connecting, import latency, and hybrid.

The index contract (test_index_contract.py) holds for every vector engine; these cover what
only the Weaviate adapter has: how it connects, how it imports, and Weaviate's own
single-engine ``hybrid`` query (BM25F + vector, fused on the server) that benchmarks
compare ragent's fusion against.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Literal
from urllib.parse import urlparse

import pytest
import weaviate
from weaviate.exceptions import WeaviateGRPCUnavailableError

from app.retrieval.remote.weaviate import WeaviateVectorIndex, connect
from app.retrieval.types import SearchFilter
from tests.contract.test_index_contract import (
    CORPUS,
    EMB,
    FILTERS,
    GROUPS,
    QUERY,
    SECRET,
    T1,
    T2,
    _chunk,
    _filter_id,
    _ids,
    _vectors,
    _visible,
)


def _connect(env: dict[str, str]) -> weaviate.WeaviateClient:
    return connect(
        env["WEAVIATE_URL"],
        grpc_port=int(env["WEAVIATE_GRPC_PORT"]),
        api_key=os.environ.get("WEAVIATE_API_KEY"),
    )


@pytest.fixture
def weaviate_index(weaviate_env: dict[str, str]) -> Iterator[WeaviateVectorIndex]:
    client = _connect(weaviate_env)
    index = WeaviateVectorIndex(client, f"RagentLive{uuid.uuid4().hex[:12]}", dim=EMB.dim)
    try:
        yield index
    finally:
        index.drop()
        client.close()


@pytest.fixture
def corpus(weaviate_index: WeaviateVectorIndex) -> WeaviateVectorIndex:
    weaviate_index.upsert(CORPUS, _vectors(CORPUS))
    return weaviate_index


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- connecting -------------------------------------------------------------------------


def test_connect_talks_to_weaviate_only(
    weaviate_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's start-up checks also query the public package index: not ours."""
    url = urlparse(weaviate_env["WEAVIATE_URL"])
    seen: list[object] = []
    guarded = socket.socket.connect

    def recording(self: socket.socket, address: object) -> None:
        seen.append(address)
        guarded(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", recording)
    client = _connect(weaviate_env)
    try:
        assert client.is_ready()
    finally:
        client.close()
    assert seen, "the REST client never connected"
    hosts = {socket.gethostbyname(str(url.hostname))}
    assert {(a[0], a[1]) for a in seen if isinstance(a, tuple)} <= {(h, url.port) for h in hosts}


def test_connect_refuses_a_dead_grpc_port(weaviate_env: dict[str, str]) -> None:
    """Skipping the client's start-up checks keeps the gRPC health check."""
    with pytest.raises(WeaviateGRPCUnavailableError):
        connect(weaviate_env["WEAVIATE_URL"], grpc_port=_free_port())


# -- importing --------------------------------------------------------------------------


def test_a_small_import_does_not_wait_for_a_full_batch(
    weaviate_index: WeaviateVectorIndex,
) -> None:
    """The client's batch context waited a second per tenant for more objects."""
    chunks = [_chunk("a", text="revenue"), _chunk("b", tenant=T2, text="revenue")]
    vectors = _vectors(chunks)
    weaviate_index.upsert(chunks, vectors)  # tenants created here, outside the timing
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        weaviate_index.upsert(chunks, vectors)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.5, timings  # two tenants took >= 2 s each time before
    assert weaviate_index.count() == 2


def test_a_large_import_is_split_and_complete(weaviate_env: dict[str, str]) -> None:
    client = _connect(weaviate_env)
    index = WeaviateVectorIndex(client, f"RagentLive{uuid.uuid4().hex[:12]}", batch_size=40)
    try:
        chunks = [_chunk(f"c{i}", doc=f"d{i % 7}", text=f"chunk {i}") for i in range(250)]
        index.upsert(chunks, _vectors(chunks))
        assert index.count() == 250
        assert index.delete_document(T1, "d3") == len(range(3, 250, 7))
    finally:
        index.drop()
        client.close()


# -- Weaviate's own hybrid query --------------------------------------------------------


@pytest.mark.parametrize("flt", FILTERS, ids=_filter_id)
def test_hybrid_filters_are_inside_the_query(
    corpus: WeaviateVectorIndex, flt: SearchFilter
) -> None:
    visible = _visible(flt)
    query = f"{QUERY} {SECRET}"  # the hidden chunks match best on both legs
    vector = EMB.embed_query(query)
    fusions: tuple[Literal["relative", "ranked"], ...] = ("relative", "ranked")
    for fusion in fusions:
        for alpha in (0.0, 0.5, 1.0):  # BM25 alone, both, vectors alone
            hits = corpus.hybrid(query, vector, flt, 50, alpha=alpha, fusion=fusion)
            assert set(_ids(hits)) == visible, (fusion, alpha)
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)
            for k in range(1, len(visible) + 1):
                top = corpus.hybrid(query, vector, flt, k, alpha=alpha, fusion=fusion)
                assert len(top) == k, (fusion, alpha, k)  # hidden matches did not eat the top k
                assert set(_ids(top)) <= visible


def test_hybrid_bm25_leg_searches_text_and_heading(corpus: WeaviateVectorIndex) -> None:
    flt = SearchFilter(T1, frozenset({"finance", "hr"}))
    far = EMB.embed_query("zzz unrelated")
    hits = corpus.hybrid("salaries", far, flt, 3, alpha=0.0)  # pure BM25
    assert _ids(hits)[0] == "t1-hr"
    assert hits[0].chunk == CORPUS[2]  # every field round-trips
    assert _ids(corpus.hybrid("people", far, flt, 3, alpha=0.0))[0] == "t1-hr"  # heading
    assert _ids(corpus.hybrid("overview", far, flt, 3, alpha=0.0))[0] == "t1-pub2"


def test_hybrid_tenant_isolation(corpus: WeaviateVectorIndex) -> None:
    everything = frozenset(GROUPS) | {"finance", "hr"}
    vector = EMB.embed_query(SECRET)
    for word in ("company", "salaries", "bonus", "summary"):  # words only T1 has
        hits = corpus.hybrid(word, vector, SearchFilter(T2, everything), 10)
        assert {h.chunk.tenant_id for h in hits} <= {T2}
    for near in ("t", "T1", "t1 ", "acme", ""):
        assert corpus.hybrid("revenue", vector, SearchFilter(near, everything), 10) == []
