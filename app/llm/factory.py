"""Chat models from Settings: OpenAI-compatible chains per tier, or the offline answerer.

With no ``llm.base_url`` and no tiers, every tier is the offline extractive answerer and
nothing touches the network. Otherwise each tier is a :class:`FallbackChatModel`: the
tier's model (or ``llm.model``), then ``llm.fallbacks`` in order, then the offline
answerer (unless ``llm.offline_fallback`` is off). vLLM, OpenAI, the llama.cpp server,
Ollama and TGI are all reached through ``ChatOpenAI`` with a ``base_url``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from app.llm.fallback.chain import Backend, FallbackChatModel
from app.llm.fallback.resilience import breaker_factory
from app.llm.offline.answerer import MODEL_NAME, ExtractiveAnswerer
from app.llm.tiers import ModelSet, Tier, TierModel
from app.llm.tokens import counter_for, default_counter
from app.retrieval.protocols import Embedder
from app.settings import LLMSettings, ModelEndpoint

__all__ = ["build_models", "cosine_similarity", "make_chat_model", "openai_model"]


def cosine_similarity(embedder: Embedder, question: str, sentences: Sequence[str]) -> list[float]:
    """Return the cosine similarity of ``question`` to each sentence (unit vectors)."""
    vectors = embedder.embed_documents(list(sentences))
    return [float(x) for x in vectors @ embedder.embed_query(question)]


def _primary(cfg: LLMSettings) -> ModelEndpoint | None:
    if not cfg.base_url:
        return None
    return ModelEndpoint(
        model=cfg.model, base_url=cfg.base_url, tokenizer=cfg.tokenizer, timeout_s=cfg.timeout_s
    )


def openai_model(endpoint: ModelEndpoint, cfg: LLMSettings) -> BaseChatModel:
    """Build a ``ChatOpenAI`` for one endpoint; the fallback chain does retries and timeouts.

    It is :class:`~app.llm.openai.chat_model.StreamingChatOpenAI`, which streams plain
    chat completions without the openai SDK's per-chunk models.

    Args:
        endpoint: The model; unset fields come from ``cfg``.
        cfg: The ``llm`` settings (key, decoding defaults).

    Returns:
        A streaming-capable client with no retries of its own.
    """
    import httpx

    from app.llm.openai.chat_model import StreamingChatOpenAI

    key = cfg.api_key
    if endpoint.api_key_env is not None:
        raw = os.environ.get(endpoint.api_key_env)
        key = SecretStr(raw) if raw else None
    # A safety net only: the chain bounds the first chunk and every gap between chunks.
    timeout = max(endpoint.timeout_s or cfg.timeout_s, cfg.stall_timeout_s) + 1.0
    return StreamingChatOpenAI(
        base_url=endpoint.base_url or cfg.base_url,
        model=endpoint.model,
        # Local servers such as vLLM accept any key; the client insists on one.
        api_key=key or SecretStr("EMPTY"),
        timeout=timeout,
        # Its own pool, not the client library's process-wide one: the pool belongs to the
        # event loop that first uses it, and ModelSet.aclose() can close it.
        http_async_client=httpx.AsyncClient(timeout=timeout),
        max_retries=0,
        stream_chunk_timeout=None,
        stream_usage=True,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        seed=cfg.seed,
        max_completion_tokens=cfg.max_tokens,
        max_tool_args_bytes=cfg.max_tool_args_bytes,
    )


# Servers known to return tool calls natively, where a reply that is JSON stays text.
_NATIVE_TOOL_CALLS = frozenset({"api.openai.com"})


def _recover_chars(endpoint: ModelEndpoint, cfg: LLMSettings) -> int:
    """How much text a reply of ``endpoint`` may hold as a recovered tool call (0: off)."""
    mode = endpoint.tool_call_recovery or cfg.tool_call_recovery
    host = urlsplit(endpoint.base_url or cfg.base_url or "").hostname or ""
    if mode == "off" or (mode == "auto" and host in _NATIVE_TOOL_CALLS):
        return 0
    return cfg.max_tool_args_bytes


def _offline(cfg: LLMSettings, embedder: Embedder | None) -> ExtractiveAnswerer:
    similarity = None if embedder is None else partial(cosine_similarity, embedder)
    return ExtractiveAnswerer(min_relevance=cfg.min_relevance, similarity=similarity)


def build_models(cfg: LLMSettings, *, embedder: Embedder | None = None) -> ModelSet:
    """Build the default model and every configured tier.

    Args:
        cfg: The ``llm`` settings.
        embedder: Lets the offline answerer order grounded sentences by meaning.

    Returns:
        The models with their tokenizers and context windows. A chain's window is the
        smallest of its remote models', since one prompt is sent to each in turn.
    """
    offline = _offline(cfg, embedder)
    primary = _primary(cfg)
    if primary is None and not cfg.tiers:
        default = TierModel(MODEL_NAME, offline, default_counter(), cfg.context_window)
        return ModelSet(default=default)
    breakers = breaker_factory(failures=cfg.breaker_failures, reset_s=cfg.breaker_reset_s)

    def where(e: ModelEndpoint) -> tuple[str, str | None]:
        return e.model, e.base_url or cfg.base_url

    def chain(head: ModelEndpoint | None) -> TierModel:
        endpoints = [head] if head is not None else []
        endpoints += [e for e in cfg.fallbacks if head is None or where(e) != where(head)]
        if not endpoints:
            return TierModel(MODEL_NAME, offline, default_counter(), cfg.context_window)
        backends = [
            Backend(
                name="@".join(map(str, where(e))),
                model=openai_model(e, cfg),
                timeout_s=e.timeout_s or cfg.timeout_s,
                retries=cfg.max_retries,
                recover_chars=_recover_chars(e, cfg),
            )
            for e in endpoints
        ]
        model = FallbackChatModel(
            backends=backends,
            offline=offline if cfg.offline_fallback else None,
            breakers=breakers,
            deadline_s=cfg.deadline_s or cfg.timeout_s,
            stall_timeout_s=cfg.stall_timeout_s,
            backoff_s=cfg.backoff_s,
        )
        first = endpoints[0]
        window = min(e.context_window or cfg.context_window for e in endpoints)
        counter = counter_for(first.model, first.tokenizer)
        return TierModel(first.model, model, counter, window)

    tiers: dict[Tier, TierModel] = {tier: chain(e) for tier, e in cfg.tiers.items()}
    return ModelSet(default=chain(primary), tiers=tiers)


def make_chat_model(cfg: LLMSettings, *, embedder: Embedder | None = None) -> BaseChatModel:
    """Return the default chat model of ``cfg`` (see :func:`build_models`)."""
    return build_models(cfg, embedder=embedder).default.model
