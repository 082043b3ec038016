"""Long-term store factory: SQLite with vector recall by default, Redis in production."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, TTLConfig

from app.memory.vector_store import VectorRecallStore
from app.retrieval.protocols import Embedder
from app.settings import Settings

__all__ = ["EmbedderEmbeddings", "open_store"]


class EmbedderEmbeddings(Embeddings):
    """Our :class:`Embedder` as LangChain ``Embeddings`` (what LangGraph stores expect)."""

    def __init__(self, embedder: Embedder) -> None:
        """Wrap ``embedder``; the model loads on first use."""
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages."""
        return [list(map(float, row)) for row in self.embedder.embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query."""
        return list(map(float, self.embedder.embed_query(text)))


def _ttl(settings: Settings) -> TTLConfig | None:
    days = settings.memory.ttl_days
    if days is None:
        return None
    return TTLConfig(default_ttl=days * 24 * 60, refresh_on_read=False)


@asynccontextmanager
async def open_store(
    settings: Settings, embedder: Embedder, *, fields: Sequence[str] = ("text",)
) -> AsyncIterator[BaseStore]:
    """Open the configured long-term store for the lifetime of the context.

    Args:
        settings: ``memory.backend`` picks ``sqlite`` (``<data_dir>/memory.sqlite``) or
            ``redis`` (``memory.redis_url``, else ``checkpoint.redis_url``; RediSearch and
            RedisJSON needed); ``memory.ttl_days`` sets the retention.
        embedder: Embeds memories and queries for recall by meaning.
        fields: Value fields that are embedded.

    Yields:
        A store whose ``search(namespace, query=...)`` ranks by cosine similarity.
    """
    ttl = _ttl(settings)
    if settings.memory.backend == "redis":
        from langgraph.store.redis import RedisStore

        url = settings.memory.redis_url or settings.checkpoint.redis_url
        index: Any = {
            "dims": embedder.dim,
            "embed": EmbedderEmbeddings(embedder),
            "fields": list(fields),
            "distance_type": "cosine",
        }
        # AsyncRedisStore cannot be created with redisvl 0.28 (see the pin tests); the sync
        # store runs its operations in a worker thread.
        with RedisStore.from_conn_string(url, index=index, ttl=ttl) as redis_store:
            await asyncio.to_thread(redis_store.setup)
            yield redis_store
        return
    from app.memory.sqlite_store import open_sqlite_store

    # Opened off the event loop: a blocking call there stalls every other request.
    async with open_sqlite_store(settings.data_dir / "memory.sqlite", ttl=ttl) as sqlite_store:
        yield VectorRecallStore(
            sqlite_store, embedder, fields=fields, scan_limit=settings.memory.max_per_user
        )
