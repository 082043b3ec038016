from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from app.retrieval.fusion import fuse, normalized_fusion, rrf
from app.retrieval.retriever import HybridRetriever
from app.retrieval.types import Chunk, Hit, SearchFilter


def _hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(Chunk(cid, "d", "t", "s", cid, (0, 1), cid), score) for cid, score in pairs]


DENSE = _hits(("a", 0.9), ("b", 0.8), ("c", 0.1))
SPARSE = _hits(("c", 12.0), ("b", 11.0), ("d", 1.0))


def _ids(hits: list[Hit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def test_rrf_sums_reciprocal_ranks_and_weights_shift_the_order() -> None:
    fused = rrf([DENSE, SPARSE], k=60)
    assert _ids(fused) == ["c", "b", "a", "d"]  # found by both engines first
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].score == pytest.approx(2 / 62)
    dense_only = rrf([DENSE, SPARSE], k=60, weights=[1.0, 0.0])
    assert _ids(dense_only) == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="one weight per ranking"):
        rrf([DENSE, SPARSE], weights=[1.0])


def test_minmax_uses_the_engines_scores_not_just_ranks() -> None:
    fused = normalized_fusion([DENSE, SPARSE], method="minmax")
    scores = {h.chunk.chunk_id: h.score for h in fused}
    assert scores["b"] == pytest.approx((0.8 - 0.1) / 0.8 + (11 - 1) / 11)
    assert scores["d"] == 0.0 and _ids(fused)[0] == "b"


def test_zscore_centres_each_list_and_handles_no_spread() -> None:
    fused = normalized_fusion([DENSE, _hits(("x", 5.0))], method="zscore")
    scores = {h.chunk.chunk_id: h.score for h in fused}
    assert scores["x"] == 0.0
    assert sum(scores[c] for c in "abc") == pytest.approx(0.0, abs=1e-9)
    assert normalized_fusion([[], DENSE]) and fuse([[]], method="zscore") == []


async def test_retriever_uses_per_engine_depth_and_method() -> None:
    class Fixed:
        def __init__(self, hits: list[Hit]) -> None:
            self.hits, self.k = hits, 0

        def search(self, query: object, flt: SearchFilter, k: int) -> list[Hit]:
            self.k = k
            return self.hits[:k]

    class Embed:
        def embed_query(self, text: str) -> list[float]:
            return [1.0]

    vectors, keywords = Fixed(DENSE), Fixed(SPARSE)
    retriever = HybridRetriever(
        embedder=Embed(),  # type: ignore[arg-type]
        vectors=vectors,  # type: ignore[arg-type]
        keywords=keywords,  # type: ignore[arg-type]
        top_k=3,
        top_n=2,
        fusion="minmax",
        keyword_depth=1,
    )
    hits = await retriever.search("q", SearchFilter("t"))
    assert (vectors.k, keywords.k) == (3, 1)
    # a: dense 1.0; c: dense 0.0 + keyword 1.0 (its only hit); the tie keeps first appearance.
    assert _ids(hits) == ["a", "c"]
    assert [h.score for h in hits] == [1.0, 1.0]


class _Meeting:
    """An engine that records its thread and waits (briefly) for the other engine to arrive."""

    def __init__(self, hits: list[Hit], barrier: threading.Barrier) -> None:
        self.hits, self.barrier, self.threads, self.met = hits, barrier, set[int](), False

    def search(self, query: object, flt: SearchFilter, k: int) -> list[Hit]:
        self.threads.add(threading.get_ident())
        try:
            self.barrier.wait(timeout=0.5)
            self.met = True
        except threading.BrokenBarrierError:
            pass
        return self.hits[:k]


@pytest.mark.parametrize("concurrent", [True, False])
async def test_engines_run_in_parallel_threads_only_when_concurrent(concurrent: bool) -> None:
    class Embed:
        def embed_query(self, text: str) -> list[float]:
            return [1.0]

    barrier = threading.Barrier(2)
    vectors, keywords = _Meeting(DENSE, barrier), _Meeting(SPARSE, barrier)
    retriever = HybridRetriever(
        embedder=Embed(),  # type: ignore[arg-type]
        vectors=vectors,  # type: ignore[arg-type]
        keywords=keywords,  # type: ignore[arg-type]
        concurrent=concurrent,
    )
    hits = await retriever.search("q", SearchFilter("t"))
    assert _ids(hits)[:2] == ["c", "b"]
    # In parallel both engines reach the barrier together; in sequence neither meets the
    # other, and both ran in one worker thread (not the event loop's).
    assert vectors.met is keywords.met is concurrent
    assert (vectors.threads == keywords.threads) is not concurrent
    assert threading.get_ident() not in vectors.threads | keywords.threads


async def test_prefetch_embeds_once_ahead_of_search_and_leaves_errors_to_search() -> None:
    from app.retrieval.embedding.query_cache import QueryCache

    class Embed:
        model_name = "m"

        def __init__(self, fail: bool = False) -> None:
            self.calls, self.fail, self.cache = 0, fail, QueryCache()

        def embed_query(self, text: str) -> object:
            return self.cache.get_or_embed("m", text, self._embed)

        def _embed(self, text: str) -> object:
            self.calls += 1
            if self.fail:
                raise RuntimeError("embedder down")
            return np.ones(2, np.float32)

    class Fixed:
        def search(self, query: object, flt: SearchFilter, k: int) -> list[Hit]:
            return DENSE[:k]

    embed = Embed()
    retriever = HybridRetriever(
        embedder=embed,  # type: ignore[arg-type]
        vectors=Fixed(),  # type: ignore[arg-type]
        keywords=Fixed(),  # type: ignore[arg-type]
        concurrent=False,
    )
    retriever.prefetch("   ")  # nothing to embed
    retriever.prefetch("q")
    for _ in range(100):
        if embed.calls:
            break
        await asyncio.sleep(0.01)
    assert embed.calls == 1  # embedded in the background, before any search
    assert _ids(await retriever.search("q", SearchFilter("t")))[0] == "a"
    assert embed.calls == 1  # the search found the prefetched vector
    broken = HybridRetriever(
        embedder=Embed(fail=True),  # type: ignore[arg-type]
        vectors=Fixed(),  # type: ignore[arg-type]
        keywords=Fixed(),  # type: ignore[arg-type]
    )
    broken.prefetch("q")
    for _ in range(50):  # the failed prefetch finishes quietly
        await asyncio.sleep(0.01)
    # With remote engines the failed embedding leaves the vector search out of the turn.
    found = await broken.retrieve("q", SearchFilter("t"))
    assert found.degraded == ("vector",)
    embedded = HybridRetriever(
        embedder=Embed(fail=True),  # type: ignore[arg-type]
        vectors=Fixed(),  # type: ignore[arg-type]
        keywords=Fixed(),  # type: ignore[arg-type]
        concurrent=False,
    )
    with pytest.raises(RuntimeError, match="embedder down"):
        await embedded.search("q", SearchFilter("t"))


async def test_prefetch_of_a_query_cached_or_in_flight_starts_no_second_worker() -> None:
    from app.retrieval import retriever as retriever_module
    from app.retrieval.embedding.query_cache import QueryCache

    release = threading.Event()

    class Slow:
        model_name = "m"

        def __init__(self) -> None:
            self.cache, self.calls = QueryCache(), 0

        def embed_query(self, text: str) -> object:
            return self.cache.get_or_embed("m", text, self._embed)

        def _embed(self, text: str) -> object:
            self.calls += 1
            release.wait(5)
            return np.ones(2, np.float32)

    embed = Slow()
    retriever = HybridRetriever(
        embedder=embed,  # type: ignore[arg-type]
        vectors=None,  # type: ignore[arg-type]
        keywords=None,  # type: ignore[arg-type]
    )
    background = retriever_module._BACKGROUND
    before = len(background)
    retriever.prefetch("q")
    for _ in range(200):
        if embed.cache.knows("m", "q"):
            break
        await asyncio.sleep(0.005)
    assert embed.cache.knows("m", "q") and not embed.cache.knows("m", "other")
    retriever.prefetch("q")  # in flight: no second thread waiting on the first
    assert len(background) == before + 1
    release.set()
    for _ in range(200):
        if len(background) == before:
            break
        await asyncio.sleep(0.005)
    retriever.prefetch("q")  # cached now
    assert len(background) == before and embed.calls == 1
