"""The engines a process uses, built once from Settings and shared by every node."""

from __future__ import annotations

import asyncio
import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from app.cache import SemanticCache, build_cache
from app.llm.factory import build_models
from app.llm.tiers import ModelSet, Tier, TierModel
from app.llm.tokens import TokenCounter, default_counter
from app.mcp import load_tools
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.embedding.embedder import make_embedder
from app.retrieval.protocols import DocumentWriter, Embedder, KeywordIndex, VectorIndex
from app.retrieval.remote.fanout import FanOutWriter
from app.retrieval.remote.records import DocumentRecords, RedisRecords
from app.retrieval.rerank import make_reranker
from app.retrieval.retriever import HybridRetriever
from app.settings import Settings, SettingsError, get_settings
from app.tools import ToolRegistry
from app.tools.catalog import build_registry
from app.tools.executor import Toolbox

if TYPE_CHECKING:
    from app.retrieval.remote.deferred import DeferredKeywordIndex, DeferredVectorIndex

__all__ = [
    "Resources",
    "aget_resources",
    "build_resources",
    "get_resources",
    "ingest_state_url",
    "use_resources",
]


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Engines behind the protocols the nodes use: the process's, the same for every run.

    What one request changes (namespace, hybrid search, depth, tool subset) travels in
    the run's :class:`~app.context.Context`, never in a copy of these.
    """

    settings: Settings
    chat_model: BaseChatModel
    embedder: Embedder
    retriever: HybridRetriever
    writer: DocumentWriter
    tools: ToolRegistry
    counter: TokenCounter
    """The embedder's tokenizer: chunk sizes and the history budget."""
    models: ModelSet | None = None
    """Chat models per tier, ``chat_model`` being the default one's; None (or another
    ``chat_model``) means ``chat_model`` for every tier."""

    @cached_property
    def toolbox(self) -> Toolbox:
        """The enabled tools under policies, rate limits and the audit trail (built once)."""
        return Toolbox(self.settings, self.tools)

    @cached_property
    def answer_cache(self) -> SemanticCache | None:
        """The semantic answer cache (opened once), or None when ``cache.enabled`` is off."""
        if not self.settings.cache.enabled:
            return None
        return build_cache(self.settings, self.embedder, self.writer)

    def model_for(self, tier: Tier) -> TierModel:
        """Return the chat model of a tier, with its tokenizer and context window."""
        if self.models is not None and self.chat_model is self.models.default.model:
            return self.models.pick(tier)
        name = str(getattr(self.chat_model, "model_name", None) or self.chat_model._llm_type)
        return TierModel(name, self.chat_model, self.counter, self.settings.llm.context_window)


def _remote_indexes(
    settings: Settings, dim: int
) -> tuple[DeferredVectorIndex, DeferredKeywordIndex]:
    """The Weaviate vector and Elasticsearch keyword adapters, connected on first use.

    Neither engine is reached here, so a process starts while one is down (see
    :mod:`app.retrieval.remote.deferred`); the clients are closed at exit.
    """
    from app.retrieval.remote.deferred import deferred_elasticsearch, deferred_weaviate

    retrieval = settings.retrieval
    assert retrieval.weaviate_url and retrieval.elasticsearch_url  # enforced by Settings
    vectors = deferred_weaviate(
        retrieval.weaviate_url,
        grpc_port=retrieval.weaviate_grpc_port,
        api_key=os.environ.get("WEAVIATE_API_KEY"),
        collection=retrieval.weaviate_collection,
        dim=dim,
    )
    keywords = deferred_elasticsearch(
        retrieval.elasticsearch_url,
        api_key=os.environ.get("ELASTICSEARCH_API_KEY"),
        index=retrieval.elasticsearch_index,
        shards=retrieval.elasticsearch_shards,
        replicas=retrieval.elasticsearch_replicas,
    )
    atexit.register(vectors.deferred.close)
    atexit.register(keywords.deferred.close)
    return vectors, keywords


def ingest_state_url(settings: Settings) -> str | None:
    """The Redis that holds the ingestion state every worker shares, or None (on this host).

    Raises:
        SettingsError: ``ingest.state_backend`` is ``redis`` without a Redis to use.
    """
    try:
        return settings.ingest.state_url(settings.server.redis_url)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def build_resources(settings: Settings) -> Resources:
    """Build engines for ``settings``; models load lazily on first use.

    Raises:
        SettingsError: A configured engine is not available in this build.
    """
    retrieval = settings.retrieval
    remote = (retrieval.vector_backend == "weaviate", retrieval.keyword_backend == "elasticsearch")
    if remote[0] != remote[1]:
        raise SettingsError(
            "retrieval: use Weaviate and Elasticsearch together, or both embedded engines "
            f"(vector_backend={retrieval.vector_backend!r}, "
            f"keyword_backend={retrieval.keyword_backend!r})"
        )
    embedder = make_embedder(settings.embed)
    reranker = make_reranker(settings.rerank)
    for engine in (embedder, reranker):  # remote clients hold connection pools
        if (close := getattr(engine, "close", None)) is not None:
            atexit.register(close)
    # The embedded index holds the chunks, or with remote engines only the document records.
    index = EmbeddedIndex(settings.data_dir / "index.sqlite", dim=embedder.dim)
    vectors: VectorIndex
    keywords: KeywordIndex
    writer: DocumentWriter
    if all(remote):
        remote_vectors, remote_keywords = _remote_indexes(settings, embedder.dim)
        vectors, keywords = remote_vectors, remote_keywords
        records: DocumentRecords = index
        if (state_url := ingest_state_url(settings)) is not None:  # shared by every worker
            redis_records = RedisRecords(state_url)
            atexit.register(redis_records.close)
            records = redis_records
        writer = FanOutWriter(records=records, vectors=remote_vectors, keywords=remote_keywords)
    else:
        vectors, keywords, writer = EmbeddedVectorIndex(index), EmbeddedKeywordIndex(index), index
    retriever = HybridRetriever(
        embedder=embedder,
        vectors=vectors,
        keywords=keywords,
        top_k=retrieval.top_k,
        top_n=retrieval.top_n,
        rrf_k=retrieval.rrf_k,
        fusion=retrieval.fusion,
        dense_weight=retrieval.dense_weight,
        keyword_weight=retrieval.keyword_weight,
        dense_depth=retrieval.dense_depth,
        keyword_depth=retrieval.keyword_depth,
        reranker=reranker,
        rerank_depth=settings.rerank.depth,
        concurrent=all(remote),  # the embedded engines share one lock: one thread hop
        engine_timeout_s=retrieval.engine_timeout_s,
    )
    models = build_models(settings.llm, embedder=embedder)
    return Resources(
        settings=settings,
        chat_model=models.default.model,
        models=models,
        embedder=embedder,
        retriever=retriever,
        writer=writer,
        tools=build_registry(settings.tools, load_tools(settings.mcp)),
        counter=default_counter(),
    )


_installed: Resources | None = None


@lru_cache(maxsize=1)
def _default() -> Resources:
    return build_resources(get_settings())


def get_resources() -> Resources:
    """Return the process's engines: those in use (:func:`use_resources`), else the default.

    The default is built from :func:`~app.settings.get_settings` on first use.
    """
    return _installed or _default()


async def aget_resources() -> Resources:
    """Like :func:`get_resources`, but builds the default off the event loop on first use."""
    installed = _installed
    if installed is not None:
        return installed
    if _default.cache_info().currsize:  # built already: no thread hop
        return _default()
    return await asyncio.to_thread(_default)


@contextmanager
def use_resources(resources: Resources) -> Iterator[Resources]:
    """Make ``resources`` the process's engines until the block ends, then restore the last.

    For a process that builds its own engines (the CLI, an eval run, a benchmark, a
    test). Every run in the process sees them, whatever its task or thread: this is no
    per-request setting (those travel in :class:`~app.context.Context`).
    """
    global _installed
    previous, _installed = _installed, resources
    try:
        yield resources
    finally:
        _installed = previous
