"""With remote engines, one engine that fails or hangs is left out and named; both: 503-able.

The engines here are the embedded ones, wrapped so that one side raises or stalls: the
real engines are killed in tests/e2e/test_remote_profile.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.retriever import HybridRetriever, RetrievalUnavailable
from app.retrieval.types import Chunk, DocumentRecord, Hit, SearchFilter
from tests.fakes import HashEmbedder

EMB = HashEmbedder()
FLT = SearchFilter("t1", frozenset())


class Down:
    """An engine whose every search fails, as a client does when its server is gone."""

    def search(self, query: object, flt: SearchFilter, k: int) -> list[Hit]:
        raise ConnectionError("connection refused to 127.0.0.1:9200 for 'secret words'")

    def count(self, flt: SearchFilter | None = None, limit: int | None = None) -> int:
        raise ConnectionError("down")


class Stalled:
    """An engine that answers only after ``seconds`` (a hung server under its own timeout)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.released = threading.Event()

    def search(self, query: object, flt: SearchFilter, k: int) -> list[Hit]:
        self.released.wait(self.seconds)
        return []

    def count(self, flt: SearchFilter | None = None, limit: int | None = None) -> int:
        self.released.wait(self.seconds)
        return 0


@pytest.fixture
def index(tmp_path: Path) -> EmbeddedIndex:
    idx = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    texts = ["write-ahead logging checkpoints", "rollback journal mode", "vacuum frees pages"]
    chunks: Sequence[Chunk] = [
        Chunk(f"c{i}", "d1", "t1", "d1.md", t, (0, len(t)), f"h{i}") for i, t in enumerate(texts)
    ]
    idx.replace_document(
        DocumentRecord("t1", "d1", "d1.md", "h", EMB.model_name),
        chunks,
        EMB.embed_documents(texts),
    )
    return idx


def _retriever(vectors: object, keywords: object, timeout: float = 5.0) -> HybridRetriever:
    return HybridRetriever(
        embedder=EMB,
        vectors=vectors,  # type: ignore[arg-type]
        keywords=keywords,  # type: ignore[arg-type]
        concurrent=True,
        engine_timeout_s=timeout,
    )


async def test_both_engines_up_is_not_degraded(index: EmbeddedIndex) -> None:
    found = await _retriever(EmbeddedVectorIndex(index), EmbeddedKeywordIndex(index)).retrieve(
        "checkpoints", FLT
    )
    assert found.degraded == ()
    assert found.hits and found.hits[0].chunk.chunk_id == "c0"


@pytest.mark.parametrize("down", ["vector", "keyword"])
async def test_one_engine_down_answers_from_the_other_and_says_so(
    index: EmbeddedIndex, down: str, caplog: pytest.LogCaptureFixture
) -> None:
    vectors: object = Down() if down == "vector" else EmbeddedVectorIndex(index)
    keywords: object = Down() if down == "keyword" else EmbeddedKeywordIndex(index)
    found = await _retriever(vectors, keywords).retrieve("checkpoints", FLT)
    assert found.degraded == (down,)
    assert found.hits[0].chunk.chunk_id == "c0"
    # The client's message may quote the query: only the error's type is logged.
    assert "ConnectionError" in caplog.text and "secret" not in caplog.text


async def test_a_stalled_engine_is_left_out_after_the_timeout(index: EmbeddedIndex) -> None:
    stalled = Stalled(30)
    started = time.perf_counter()
    try:
        found = await _retriever(EmbeddedVectorIndex(index), stalled, timeout=0.3).retrieve(
            "checkpoints", FLT
        )
    finally:
        stalled.released.set()
    assert time.perf_counter() - started < 5
    assert found.degraded == ("keyword",)
    assert found.hits


async def test_both_engines_down_raise_a_clear_error() -> None:
    with pytest.raises(RetrievalUnavailable, match="vector ConnectionError; keyword"):
        await _retriever(Down(), Down()).retrieve("checkpoints", FLT)


async def test_embedded_engines_are_not_isolated(index: EmbeddedIndex) -> None:
    """One file behind both: a failure there is a real error, never a quiet half answer."""
    retriever = HybridRetriever(
        embedder=EMB,
        vectors=EmbeddedVectorIndex(index),
        keywords=Down(),  # type: ignore[arg-type]
        concurrent=False,
    )
    with pytest.raises(ConnectionError):
        await retriever.retrieve("checkpoints", FLT)


async def test_whether_anything_is_visible_survives_one_engine_down(index: EmbeddedIndex) -> None:
    vectors, keywords = EmbeddedVectorIndex(index), EmbeddedKeywordIndex(index)
    assert await _retriever(vectors, Down()).has_visible(FLT)  # asked the vector engine
    assert await _retriever(Down(), keywords).has_visible(FLT)
    assert not await _retriever(Down(), keywords).has_visible(SearchFilter("nobody"))
    # Neither answers: True, so the search runs and reports the outage with a clear error.
    assert await _retriever(Down(), Down()).has_visible(FLT)


async def test_a_hung_engine_never_holds_the_event_loops_default_threads(
    index: EmbeddedIndex,
) -> None:
    """Calls to a hung engine pile up in its own few threads; past those, it is left out at
    once, and the loop's default executor (checkpoints, keys) stays free throughout."""
    stalled = Stalled(30)
    retriever = HybridRetriever(
        embedder=EMB,
        vectors=EmbeddedVectorIndex(index),
        keywords=stalled,  # type: ignore[arg-type]
        concurrent=True,
        engine_timeout_s=0.2,
        engine_threads=2,
    )
    try:
        for _ in range(2):  # each leaves a thread blocked on the engine
            assert (await retriever.retrieve("checkpoints", FLT)).degraded == ("keyword",)
        started = time.perf_counter()
        found = await retriever.retrieve("checkpoints", FLT)
        assert found.degraded == ("keyword",) and found.hits
        assert time.perf_counter() - started < 0.15  # refused at once, no wait for a thread
        # The default executor is not the engine's: a burst of other work runs at once.
        started = time.perf_counter()
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.05) for _ in range(16)))
        assert time.perf_counter() - started < 2
        with pytest.raises(ConnectionError):
            await retriever.ping("keyword")
    finally:
        stalled.released.set()
    for _ in range(100):  # released: the engine's threads come back
        try:
            await retriever.ping("keyword")
            break
        except ConnectionError:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("the engine's threads never came back")
