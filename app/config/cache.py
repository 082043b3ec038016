"""The ``cache`` section: the semantic answer cache (:mod:`app.cache`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.config.section import Section

__all__ = ["CacheSettings"]


class CacheSettings(Section):
    """Reuse a stored answer for the same or a paraphrased question, within one scope.

    Off by default: a hit shares one user's answer with every user of the same tenant,
    ACL groups and settings, a choice each deployment makes for itself; and with the
    offline answerer (the default model) a full turn takes a fraction of a second, so a
    hit saves little.
    """

    enabled: bool = False
    """Consult the cache before retrieval and fill it after the output guard."""
    backend: Literal["sqlite", "redis"] = "sqlite"
    """``sqlite``: ``<data_dir>/answer_cache.sqlite``; ``redis``: a RediSearch vector
    index, shared by every worker and replica."""
    redis_url: str | None = None
    """None: ``checkpoint.redis_url``."""
    threshold: float = Field(default=0.9, ge=0, le=1)
    """Lowest cosine similarity between two questions' embeddings for a hit (calibrated
    by bench/semantic_cache.py on evals/datasets/cache_pairs.jsonl)."""
    term_threshold: float = Field(default=0.82, ge=0, le=1)
    """Lowest cosine similarity between a content word of one question and its
    counterpart in the other, for words they do not share."""
    ttl_s: float = Field(default=86_400.0, gt=0)
    """An entry older than this is never served."""
    max_entries: int = Field(default=10_000, ge=1, le=10_000_000)
    """Entries kept in all; the oldest go first."""
    candidates: int = Field(default=4, ge=1, le=50)
    """Nearest stored questions checked per lookup."""
