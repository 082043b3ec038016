"""The LRU cache of query vectors shared by the embedders."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from app.retrieval.embedding.query_cache import QueryCache


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> np.ndarray:
        self.calls.append(text)
        return np.full(4, float(len(self.calls)), np.float32)


def test_least_recently_used_entry_is_evicted() -> None:
    cache, embed = QueryCache(maxsize=2), Counting()
    cache.get_or_embed("m", "a", embed)
    cache.get_or_embed("m", "b", embed)
    cache.get_or_embed("m", "a", embed)  # "a" is now the most recent
    cache.get_or_embed("m", "c", embed)  # evicts "b"
    assert len(cache) == 2
    cache.get_or_embed("m", "a", embed)
    cache.get_or_embed("m", "b", embed)
    assert embed.calls == ["a", "b", "c", "b"]
    assert (cache.hits, cache.misses) == (2, 4)


def test_keys_include_the_model_and_vectors_are_read_only() -> None:
    cache, embed = QueryCache(), Counting()
    one = cache.get_or_embed("model-1", "q", embed)
    two = cache.get_or_embed("model-2", "q", embed)
    assert one is not two and embed.calls == ["q", "q"]
    assert cache.get_or_embed("model-1", "q", embed) is one
    with pytest.raises(ValueError, match="read-only"):
        one[0] = 9.0


def test_failures_are_not_cached_and_size_zero_disables() -> None:
    cache = QueryCache()

    def broken(text: str) -> np.ndarray:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get_or_embed("m", "q", broken)
    assert len(cache) == 0
    embed = Counting()
    off = QueryCache(maxsize=0)
    off.get_or_embed("m", "q", embed)
    off.get_or_embed("m", "q", embed)
    assert embed.calls == ["q", "q"] and len(off) == 0
    with pytest.raises(ValueError, match="maxsize"):
        QueryCache(maxsize=-1)


class Gated(Counting):
    """Embeds only once ``release`` is set; can fail its first call."""

    def __init__(self, *, fail_first: bool = False) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()
        self.fail_first = fail_first

    def __call__(self, text: str) -> np.ndarray:
        self.started.set()
        assert self.release.wait(5)
        if self.fail_first and not self.calls:
            self.calls.append(text)
            raise RuntimeError("down")
        return super().__call__(text)


def _in_thread(cache: QueryCache, embed: Gated, out: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            out.append(cache.get_or_embed("m", "q", embed))
        except RuntimeError as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_query_being_embedded_is_waited_for_not_embedded_twice() -> None:
    cache, embed, out = QueryCache(), Gated(), list[object]()
    first = _in_thread(cache, embed, out)
    assert embed.started.wait(5)
    second = _in_thread(cache, embed, out)
    time.sleep(0.05)  # the second caller is now waiting on the first
    embed.release.set()
    first.join(5)
    second.join(5)
    assert embed.calls == ["q"]
    assert len(out) == 2 and out[0] is out[1]
    assert (cache.hits, cache.misses) == (1, 1)  # the waiter did not compute: a hit


def test_a_waiter_embeds_itself_when_the_running_embedding_fails() -> None:
    cache, embed, out = QueryCache(), Gated(fail_first=True), list[object]()
    first = _in_thread(cache, embed, out)
    assert embed.started.wait(5)
    second = _in_thread(cache, embed, out)
    time.sleep(0.05)
    embed.release.set()
    first.join(5)
    second.join(5)
    assert embed.calls == ["q", "q"]
    assert isinstance(out[0], RuntimeError) and isinstance(out[1], np.ndarray)
    assert (cache.hits, cache.misses) == (0, 2)
    assert cache.get_or_embed("m", "q", embed) is out[1]


def test_start_fills_the_cache_from_a_future_and_waiters_get_its_vector() -> None:
    cache = QueryCache()
    submitted: list[str] = []
    future: Future[np.ndarray] = Future()

    def submit(text: str) -> Future[np.ndarray]:
        submitted.append(text)
        return future

    cache.start("m", "q", submit)
    cache.start("m", "q", submit)  # in flight: not submitted twice
    assert submitted == ["q"] and cache.knows("m", "q")
    got: list[np.ndarray] = []
    waiter = threading.Thread(target=lambda: got.append(cache.get_or_embed("m", "q", Counting())))
    waiter.start()
    time.sleep(0.05)
    assert not got  # waits for the started computation rather than embedding
    future.set_result(np.ones(4, np.float32))
    waiter.join(5)
    np.testing.assert_array_equal(got[0], np.ones(4))
    assert (cache.hits, cache.misses) == (1, 1)  # the start computed it; the waiter hit
    cache.start("m", "q", submit)  # cached: nothing to do
    assert submitted == ["q"]


def test_a_failed_start_is_not_cached_and_the_next_caller_embeds() -> None:
    cache, embed = QueryCache(), Counting()
    failed: Future[np.ndarray] = Future()
    cache.start("m", "q", lambda _: failed)
    failed.set_exception(RuntimeError("model down"))
    assert not cache.knows("m", "q")
    np.testing.assert_array_equal(cache.get_or_embed("m", "q", embed), np.ones(4))
    assert embed.calls == ["q"]

    def broken(_: str) -> Future[np.ndarray]:
        raise RuntimeError("queue closed")

    with pytest.raises(RuntimeError, match="queue closed"):
        cache.start("m", "other", broken)
    assert not cache.knows("m", "other")  # not left pending forever
