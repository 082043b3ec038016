"""The LRU cache of query vectors shared by the embedders."""

from __future__ import annotations

import numpy as np
import pytest

from app.retrieval.query_cache import QueryCache


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
