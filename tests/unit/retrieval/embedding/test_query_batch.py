"""Query embeddings that arrive together share one pass; a lone one runs at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.retrieval.embedding.query_batch import QueryBatcher


class SlowModel:
    """Each pass takes 50 ms and returns the text lengths as vectors."""

    def __init__(self, fail_on: str = "") -> None:
        self.passes: list[list[str]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.passes.append(list(texts))
        self.threads.add(threading.get_ident())
        time.sleep(0.05)
        if self.fail_on in texts:
            raise RuntimeError("model failed")
        return np.asarray([[len(t), i] for i, t in enumerate(texts)], np.float32)


def test_a_lone_query_runs_at_once_in_a_pass_of_its_own() -> None:
    model = SlowModel()
    batcher = QueryBatcher(model)
    started = time.perf_counter()
    vector = batcher.embed("abc")
    assert time.perf_counter() - started < 0.5
    assert vector.tolist() == [3.0, 0.0]
    assert model.passes == [["abc"]]


def test_concurrent_queries_share_passes_and_each_gets_its_own_row() -> None:
    model = SlowModel()
    batcher = QueryBatcher(model, max_batch=8)
    texts = ["x" * n for n in range(1, 21)]
    with ThreadPoolExecutor(20) as pool:
        vectors = list(pool.map(batcher.embed, texts))
    assert [v[0] for v in vectors] == [len(t) for t in texts]  # each caller got its row
    assert sorted(t for p in model.passes for t in p) == sorted(texts)  # each embedded once
    assert len(model.passes) < len(texts) / 2  # queued queries rode together
    assert max(len(p) for p in model.passes) <= 8
    assert len(model.threads) == 1  # one thread runs the model


def test_a_failed_pass_fails_its_callers_only() -> None:
    model = SlowModel(fail_on="bad")
    batcher = QueryBatcher(model)
    gate = threading.Barrier(3)

    def call(text: str) -> object:
        gate.wait(5)
        try:
            return batcher.embed(text)
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(call, ["bad", "ok1", "ok2"]))
    failed = [p for p in model.passes if "bad" in p][0]
    for text, result in zip(["bad", "ok1", "ok2"], results, strict=True):
        assert isinstance(result, RuntimeError) is (text in failed)
    assert batcher.embed("later").tolist()[0] == 5.0  # the thread keeps serving


def test_the_local_embedder_batches_concurrent_queries() -> None:
    from app.retrieval.embedding.embedder import LocalEmbedder

    embedder = LocalEmbedder()
    texts = [f"question number {i} about write-ahead logging" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        vectors = list(pool.map(embedder.embed_query, texts))
    alone = embedder.embed_documents(texts)
    np.testing.assert_allclose(np.stack(vectors), alone, atol=1e-5)


def test_submit_returns_at_once_and_the_future_gets_the_row() -> None:
    model = SlowModel()
    batcher = QueryBatcher(model)
    started = time.monotonic()
    future = batcher.submit("abc")
    assert time.monotonic() - started < 0.04  # the 50 ms pass runs in the batcher's thread
    np.testing.assert_array_equal(future.result(5), [3, 0])
    assert threading.get_ident() not in model.threads


def test_drain_waits_for_every_queued_query() -> None:
    model = SlowModel()
    batcher = QueryBatcher(model, max_batch=2)
    assert batcher.drain()  # never started: nothing to wait for
    futures = [batcher.submit(t) for t in ("a", "bb", "ccc", "dddd", "eeeee")]
    assert batcher.drain(5)
    assert all(f.done() for f in futures)
    assert sum(len(p) for p in model.passes) == 5
