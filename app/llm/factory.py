"""Chat-model factory: an OpenAI-compatible server when configured, else the offline answerer."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from app.llm.offline import ExtractiveAnswerer
from app.retrieval.protocols import Embedder
from app.settings import LLMSettings

__all__ = ["cosine_similarity", "make_chat_model"]


def cosine_similarity(embedder: Embedder, question: str, sentences: Sequence[str]) -> list[float]:
    """Return the cosine similarity of ``question`` to each sentence (unit vectors)."""
    vectors = embedder.embed_documents(list(sentences))
    return [float(x) for x in vectors @ embedder.embed_query(question)]


def make_chat_model(cfg: LLMSettings, *, embedder: Embedder | None = None) -> BaseChatModel:
    """Build the configured chat model.

    Args:
        cfg: With ``base_url`` set, any OpenAI-compatible server (vLLM, OpenAI,
            llama.cpp, Ollama, TGI) through ``ChatOpenAI``; without it, the
            deterministic offline extractive answerer, which makes no network calls.
        embedder: Lets the offline answerer order grounded sentences by meaning.

    Returns:
        A LangChain chat model that supports ``bind_tools``.
    """
    if not cfg.base_url:
        similarity = None if embedder is None else partial(cosine_similarity, embedder)
        return ExtractiveAnswerer(min_relevance=cfg.min_relevance, similarity=similarity)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=cfg.base_url,
        model=cfg.model,
        # Local servers such as vLLM accept any key; the client insists on one.
        api_key=cfg.api_key or SecretStr("EMPTY"),
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_completion_tokens=cfg.max_tokens,
        streaming=False,
    )
