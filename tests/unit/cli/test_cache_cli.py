"""``ragent cache stats``: the figures it derives from the engine's shared counters."""

from __future__ import annotations

from app.cli.cache import summarise


def test_stats_derive_the_hit_rate_and_mean_times_from_the_counters() -> None:
    counters = {
        "lookups": 4,
        "hit": 1,
        "hit_seconds": 0.002,
        "miss": 2,
        "miss_seconds": 0.02,
        "near_miss": 1,
        "near_miss_seconds": 0.01,
        "saved_tokens": 120,
    }
    figures = summarise(counters, entries=3)
    assert figures == {
        "entries": 3,
        "lookups": 4,
        "hits": 1,
        "hit_rate": 0.25,
        "near_misses": 1,
        "stale": 0,
        "errors": 0,
        "saved_tokens": 120,
        "hit_ms": 2.0,
        "miss_ms": 10.0,
    }
    assert summarise({}, entries=0)["hit_ms"] is None
