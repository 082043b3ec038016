"""Chat-model factory: an OpenAI-compatible server when configured, else the offline answerer."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from app.llm.offline import ExtractiveAnswerer
from app.settings import LLMSettings

__all__ = ["make_chat_model"]


def make_chat_model(cfg: LLMSettings) -> BaseChatModel:
    """Build the configured chat model.

    Args:
        cfg: With ``base_url`` set, any OpenAI-compatible server (vLLM, OpenAI,
            llama.cpp, Ollama, TGI) through ``ChatOpenAI``; without it, the
            deterministic offline extractive answerer, which makes no network calls.

    Returns:
        A LangChain chat model that supports ``bind_tools``.
    """
    if not cfg.base_url:
        return ExtractiveAnswerer(min_relevance=cfg.min_relevance)
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
