"""Chat-model chains over the scripted model server, for the tests of this package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from langchain_core.language_models import BaseChatModel

from app.llm.factory import build_models
from app.resources import Resources, use_resources
from app.settings import LLMSettings
from tests.openai_server import OpenAIServer


def remote_llm(server: OpenAIServer, model: str, **fields: Any) -> LLMSettings:
    """Settings for one remote model on ``server``: patient, no retries, no offline answer."""
    return LLMSettings(
        base_url=server.base_url,
        model=model,
        timeout_s=60.0,
        stall_timeout_s=60.0,
        max_retries=0,
        offline_fallback=False,
        **fields,
    )


@asynccontextmanager
async def remote_chain(
    server: OpenAIServer, model: str, **fields: Any
) -> AsyncIterator[BaseChatModel]:
    """The default tier's chain for :func:`remote_llm`, closed afterwards."""
    models = build_models(remote_llm(server, model, **fields))
    try:
        yield models.default.model
    finally:
        await models.aclose()


@asynccontextmanager
async def remote_agent(
    resources: Resources, server: OpenAIServer, model: str, **fields: Any
) -> AsyncIterator[Resources]:
    """``resources`` with :func:`remote_llm` as every model, in use while the block runs.

    Memory extraction and summaries stay offline: only the turn's answers ask the model.
    """
    settings = resources.settings.model_copy(deep=True)
    settings.llm = remote_llm(server, model, **fields)
    settings.memory.extraction = "explicit"
    settings.memory.summarizer = "extractive"
    models = build_models(settings.llm)
    res = replace(resources, settings=settings, chat_model=models.default.model, models=models)
    try:
        with use_resources(res):
            yield res
    finally:
        await models.aclose()
