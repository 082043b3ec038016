"""The engines a process uses, built once from Settings and shared by every node."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from langchain_core.language_models import BaseChatModel

from app.llm.factory import make_chat_model
from app.llm.tokens import TokenCounter, default_counter
from app.retrieval.embedded import EmbeddedIndex, EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.embedder import LocalEmbedder
from app.retrieval.protocols import DocumentWriter, Embedder
from app.retrieval.retriever import HybridRetriever
from app.settings import Settings, SettingsError, get_settings
from app.tools import ToolRegistry, default_registry

__all__ = ["Resources", "aget_resources", "build_resources", "get_resources", "use_resources"]


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Engines behind the protocols the nodes use."""

    settings: Settings
    chat_model: BaseChatModel
    embedder: Embedder
    retriever: HybridRetriever
    writer: DocumentWriter
    tools: ToolRegistry
    counter: TokenCounter


def build_resources(settings: Settings) -> Resources:
    """Build engines for ``settings``; models load lazily on first use.

    Raises:
        SettingsError: A configured engine is not available in this build.
    """
    retrieval = settings.retrieval
    if retrieval.vector_backend != "embedded" or retrieval.keyword_backend != "embedded":
        raise SettingsError(
            "retrieval: only the embedded engines are available in this build "
            f"(vector_backend={retrieval.vector_backend!r}, "
            f"keyword_backend={retrieval.keyword_backend!r})"
        )
    if settings.embed.provider != "local":
        raise SettingsError("embed.provider: only 'local' is available in this build")
    embedder = LocalEmbedder(settings.embed.model, batch_size=settings.embed.batch_size)
    index = EmbeddedIndex(settings.data_dir / "index.sqlite", dim=embedder.dim)
    retriever = HybridRetriever(
        embedder=embedder,
        vectors=EmbeddedVectorIndex(index),
        keywords=EmbeddedKeywordIndex(index),
        top_k=retrieval.top_k,
        top_n=retrieval.top_n,
        rrf_k=retrieval.rrf_k,
    )
    return Resources(
        settings=settings,
        chat_model=make_chat_model(settings.llm, embedder=embedder),
        embedder=embedder,
        retriever=retriever,
        writer=index,
        tools=default_registry(),
        counter=default_counter(),
    )


_override: ContextVar[Resources | None] = ContextVar("ragent_resources", default=None)


@lru_cache(maxsize=1)
def _default() -> Resources:
    return build_resources(get_settings())


def get_resources() -> Resources:
    """Return the resources for the current context (an override, else the process default)."""
    return _override.get() or _default()


async def aget_resources() -> Resources:
    """Like :func:`get_resources`, but builds the default off the event loop on first use."""
    override = _override.get()
    if override is not None:
        return override
    return await asyncio.to_thread(_default)


@contextmanager
def use_resources(resources: Resources) -> Iterator[Resources]:
    """Use ``resources`` for graph runs started inside this context."""
    token = _override.set(resources)
    try:
        yield resources
    finally:
        _override.reset(token)
