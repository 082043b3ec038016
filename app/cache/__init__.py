"""The semantic answer cache: reuse a cited answer for a paraphrased question, in scope."""

from __future__ import annotations

from app.cache.entry import CachedAnswer, CitedDocument, Scope, scope_key
from app.cache.semantic import Lookup, SemanticCache
from app.cache.store import AnswerStore, SqliteAnswerStore
from app.retrieval.protocols import DocumentWriter, Embedder
from app.settings import Settings

__all__ = [
    "AnswerStore",
    "CachedAnswer",
    "CitedDocument",
    "Lookup",
    "Scope",
    "SemanticCache",
    "SqliteAnswerStore",
    "build_cache",
    "build_store",
    "scope_key",
]


def build_store(settings: Settings, dim: int) -> AnswerStore:
    """Open the configured engine (``cache.backend``); Redis connects on first use."""
    cache = settings.cache
    if cache.backend == "redis":
        from app.cache.redis_store import RedisAnswerStore

        url = cache.redis_url or settings.checkpoint.redis_url
        return RedisAnswerStore(url, dim=dim, ttl_s=cache.ttl_s, max_entries=cache.max_entries)
    return SqliteAnswerStore(
        settings.data_dir / "answer_cache.sqlite",
        ttl_s=cache.ttl_s,
        max_entries=cache.max_entries,
    )


def build_cache(settings: Settings, embedder: Embedder, documents: DocumentWriter) -> SemanticCache:
    """The answer cache of a process, on the configured engine."""
    cache = settings.cache
    return SemanticCache(
        build_store(settings, embedder.dim),
        embedder,
        documents,
        threshold=cache.threshold,
        term_threshold=cache.term_threshold,
        candidates=cache.candidates,
    )
