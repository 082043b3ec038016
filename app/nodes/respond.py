"""Assemble the context window within budget and call the tier's model with tools bound."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage, SystemMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.config import get_config
from langgraph.runtime import Runtime

from app import prompts
from app.context import Context
from app.conversations import thread_of
from app.llm.budget import assemble
from app.llm.fallback.chain import OFFLINE
from app.llm.offline.answerer import MODEL_NAME as OFFLINE_MODEL
from app.llm.offline.memory_answers import render_memories
from app.llm.tiers import TierRules, escalate, retrieval_confidence
from app.resources import aget_resources
from app.state import AgentState, Source
from app.tools.client import NO_CALL_OFFLINE, client_names, forces_choice, name_calls

__all__ = ["decoding_kwargs", "render_source", "render_sources", "respond"]


def render_source(source: Source) -> str:
    """Render one source as its header line ``[S<n>] <source>`` and its text."""
    # A chunk must not forge a header line; labels are the model's only handle.
    text = source["text"].replace("[S", "[ S")
    return f"[{source['label']}] {source['source']}\n{text}"


def render_sources(sources: list[Source]) -> str:
    """Render sources as the labelled block the model cites from."""
    return "\n".join([prompts.SOURCES_OPEN, *map(render_source, sources), prompts.SOURCES_CLOSE])


_SPECS: dict[tuple[int, ...], tuple[list[dict[str, Any]], list[BaseTool]]] = {}


def _specs(tools: list[BaseTool]) -> list[dict[str, Any]]:
    """The tools' JSON schemas, built once per tool set (tools are not hashable)."""
    key = tuple(map(id, tools))
    if key not in _SPECS:
        _SPECS[key] = ([convert_to_openai_tool(tool) for tool in tools], list(tools))
    return _SPECS[key][0]


def _caller_thread(ctx: Context) -> str:
    """The caller's id of the running thread (its checkpoint key less the owner)."""
    try:
        key = thread_of(get_config())
    except RuntimeError:  # called outside a graph run (unit tests of the node)
        return ""
    return key.removeprefix(f"{ctx.tenant_id}/{ctx.user_id}/")


def _offline(reply: BaseMessage) -> bool:
    return reply.response_metadata.get("served_by") == OFFLINE or (
        reply.response_metadata.get("model_name") == OFFLINE_MODEL
    )


def decoding_kwargs(ctx: Context) -> dict[str, Any]:
    """Return the per-request decoding parameters (and response format) of the run's context."""
    values = {
        "temperature": ctx.temperature,
        "top_p": ctx.top_p,
        "max_tokens": ctx.max_tokens,
        "seed": ctx.seed,
        "response_format": ctx.response_format,
    }
    return {key: value for key, value in values.items() if value is not None}


async def respond(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Call the tier's model on what fits of the prompt, by priority.

    Priority: system prompt, tool schemas, summary, recent turns, sources by rank,
    memories; each goes in whole or not at all, within the model's context window
    minus its answer budget. A ``small`` tier moves to ``large`` when retrieval
    confidence is low. The context's ``tools`` are bound (every enabled tool when it
    names none) with the caller's ``client_tools`` until the step limit is reached; then
    the model must answer. ``tool_choice`` holds for the first call of a request (see
    :func:`~app.tools.client.forces_choice`); offline, a call it forces but the offline
    answerer cannot make ends the turn with a message that says so. Calls to client
    tools get ids that name the thread (:func:`~app.tools.client.name_calls`). The
    tier, tokenizer and what was left out go into the reply's ``response_metadata``.
    """
    resources = await aget_resources()
    llm = resources.settings.llm
    ctx = runtime.context
    confidence = None
    if state.route == "rag" and state.tier == "small":  # only a small tier can move
        confidence = retrieval_confidence(state.query, [s["text"] for s in state.sources])
    tier = escalate(state.tier, confidence, TierRules(llm.small_max_words, llm.min_confidence))
    chosen = resources.model_for(tier)
    tools: list[BaseTool] = []
    client_specs: list[dict[str, Any]] = []
    max_tool_steps = resources.settings.limits.max_tool_steps
    if state.tool_steps < max_tool_steps:
        tools = list(resources.toolbox.offering(ctx.tools).registry.tools)
        client_specs = ctx.client_tools
    client = client_names(ctx.client_tools)
    # To the minute: seconds would change the prompt ahead of the tool schemas and the
    # conversation on every call, and a model server's prefix cache could not reuse them.
    system = ctx.system_prompt.format(now=datetime.now(UTC).isoformat(timespec="minutes"))
    answer_budget = ctx.max_tokens or llm.max_tokens
    window = assemble(
        limit=chosen.context_window - answer_budget,
        counter=chosen.counter,
        system=f"{system}\n\n{prompts.SOURCES_OPEN}\n{prompts.SOURCES_CLOSE}",
        tools=[*_specs(tools), *client_specs],
        summary=state.summary,
        turns=state.messages[state.summarized_count :],
        sources=state.sources,
        render_source=render_source,
        memories=state.memories,
    )
    if window.summary:
        system += f"\n\nSummary of the earlier conversation:\n{window.summary}"
    if window.memories:
        system += "\n\n" + render_memories(window.memories)
    if window.sources:
        system += "\n\n" + render_sources(window.sources)
    choice = ctx.tool_choice if forces_choice(state.messages, client) else None
    bound: list[Any] = [*tools, *client_specs]
    model = chosen.model.bind_tools(bound, tool_choice=choice) if bound else chosen.model
    prompt: list[BaseMessage | AnyMessage] = [SystemMessage(content=system), *window.turns]
    reply = await model.ainvoke(prompt, stop=ctx.stop or None, **decoding_kwargs(ctx))
    reply = name_calls(reply, client, _caller_thread(ctx))
    if choice not in {None, "auto"} and not reply.tool_calls and _offline(reply):
        reply = reply.model_copy(update={"content": NO_CALL_OFFLINE})
    metadata = {
        **reply.response_metadata,
        "tier": tier,
        "tokenizer": chosen.counter.name,
        "prompt_tokens_counted": window.tokens,
        **({"left_out": window.dropped} if window.dropped else {}),
    }
    return {
        "messages": [reply.model_copy(update={"response_metadata": metadata})],
        "tier": tier,
        "max_tool_steps": max_tool_steps,
    }
