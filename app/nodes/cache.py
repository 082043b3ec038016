"""Answer-cache nodes: serve a stored answer before retrieval, store a new one after the guard.

Only turns whose answer depends on nothing but the question and the scope take part:
a retrieval turn that opens its thread (no earlier message, no summary), recalls no
memories, offers no client tools and asks for no JSON format or forced tool. Time
questions, arithmetic, notes and small talk go ``direct`` and never take part. An answer
is stored only when it cites sources, used no tool, was not refused and had every
search engine. The scope (:class:`~app.cache.Scope`) holds the tenant and namespace,
the ACL groups, the model, the prompt, the decoding, retrieval and model settings, and
the tools offered; a hit is never shared across them, and the answer is never keyed
per user: nothing of the user's own enters a turn that takes part.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from app.cache import Scope, SemanticCache
from app.context import Context
from app.nodes.respond import decoding_kwargs
from app.observability.metrics import count_rag_answer
from app.resources import Resources, aget_resources
from app.retrieval.types import namespace_tenant
from app.state import AgentState

__all__ = [
    "after_answer",
    "after_lookup",
    "cache_scope",
    "cacheable",
    "lookup_answer",
    "store_answer",
]


def cacheable(state: AgentState, ctx: Context) -> bool:
    """Whether a retrieval turn may be served from, and stored in, the answer cache.

    ``route`` asks, for a turn it sends to retrieval when ``cache.enabled`` is on, and
    marks the turn ``pending``: only such a turn takes the cache's steps.
    """
    humans = sum(isinstance(m, HumanMessage) for m in state.messages)
    return (
        ctx.cache
        and humans == 1
        and not state.summary
        and not state.memories
        and not ctx.client_tools
        and ctx.response_format is None
        and ctx.tool_choice is None
    )


def cache_scope(state: AgentState, ctx: Context, resources: Resources) -> Scope:
    """The scope of a turn: what its answer depends on besides the question."""
    settings = resources.settings
    tools = sorted(ctx.tools) if ctx.tools is not None else ["*", *resources.tools.names]
    return Scope(
        tenant=namespace_tenant(ctx.tenant_id, ctx.namespace),
        groups=ctx.acl_groups,
        model=resources.model_for(state.tier).name,
        embed_model=resources.embedder.model_name,
        system_prompt=ctx.system_prompt,
        decoding={
            **decoding_kwargs(ctx),
            "stop": ctx.stop,
            "llm": settings.llm.model_dump(mode="json", exclude={"api_key"}),
        },
        tools=tools,
        retrieval={
            "hybrid": ctx.hybrid,
            "top_k": ctx.top_k,
            "top_n": ctx.top_n,
            "settings": settings.retrieval.model_dump(mode="json"),
            "rerank": settings.rerank.model_dump(mode="json", exclude={"api_key"}),
        },
    )


async def _answer_cache(resources: Resources) -> SemanticCache | None:
    """The process's answer cache; opened off the event loop the first time (a file)."""
    if not resources.settings.cache.enabled:
        return None
    if "answer_cache" in vars(resources):
        return resources.answer_cache
    return await asyncio.to_thread(lambda: resources.answer_cache)


async def lookup_answer(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Serve a stored answer to the same or a paraphrased question, in the turn's scope.

    A hit skips retrieval and the model: the stored answer, already through the output
    guard, and its citations become the turn's. ``cache`` is ``hit`` or ``miss`` when
    the turn took part, empty when it did not.
    """
    resources = await aget_resources()
    cache = await _answer_cache(resources)
    if cache is None:
        return {"cache": ""}
    found = await cache.lookup(cache_scope(state, runtime.context, resources), state.query)
    if found.entry is None:
        return {"cache": "miss"}
    reply = AIMessage(content=found.entry.answer, response_metadata={"cache": "hit"})
    # The hit ends the turn here, before guard_output: its one count in ragent_rag_answers_total.
    count_rag_answer(cited=bool(found.entry.citations), refused=False, cache_hit=True)
    return {
        "cache": "hit",
        "messages": [reply],
        "citations": found.entry.citations,
        "refused": False,
    }


def after_lookup(state: AgentState) -> Literal["retrieve", "compress_memory"]:
    """A hit ends the turn (its answer was guarded when stored); a miss retrieves."""
    return "compress_memory" if state.cache == "hit" else "retrieve"


def after_answer(state: AgentState) -> Literal["store_answer", "compress_memory"]:
    """Store the answer of a turn that looked the cache up and missed."""
    return "store_answer" if state.cache == "miss" else "compress_memory"


def _tokens(state: AgentState) -> int:
    total = 0
    for message in reversed(state.messages):
        if isinstance(message, HumanMessage):
            break
        usage = getattr(message, "usage_metadata", None) or {}
        total += int(usage.get("total_tokens", 0))
    return total


async def store_answer(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Store the guarded answer of a turn that missed, when it may be reused.

    Only a cited answer that used no tool, was not refused and had every search engine.
    """
    last = state.messages[-1] if state.messages else None
    if (
        state.cache != "miss"
        or state.refused
        or state.tool_steps
        or state.degraded
        or not state.citations
        or not isinstance(last, AIMessage)
        or last.tool_calls
    ):
        return {}
    resources = await aget_resources()
    cache = await _answer_cache(resources)
    if cache is not None:
        scope = cache_scope(state, runtime.context, resources)
        await cache.put(scope, state.query, last.text, list(state.citations), _tokens(state))
    return {}
