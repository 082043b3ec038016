"""Assemble the context window within budget and call the chat model with tools bound."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AnyMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime

from app import prompts
from app.context import Context
from app.resources import aget_resources
from app.state import AgentState, Source

__all__ = ["render_sources", "respond"]


def render_sources(sources: list[Source]) -> str:
    """Render sources as the labelled block the model cites from."""
    blocks = []
    for source in sources:
        # A chunk must not forge a header line; labels are the model's only handle.
        text = source["text"].replace("[S", "[ S")
        blocks.append(f"[{source['label']}] {source['source']}\n{text}")
    return "\n".join([prompts.SOURCES_OPEN, *blocks, prompts.SOURCES_CLOSE])


def _window(state: AgentState) -> list[AnyMessage]:
    window = list(state.messages[state.summarized_count :])
    while window and isinstance(window[0], ToolMessage):
        window.pop(0)
    return window


async def respond(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Call the model on system prompt, summary, memories, sources and the recent window.

    Sources are dropped lowest-ranked first, whole, until the prompt fits the
    model's window minus its answer budget. Tools are unbound once the step
    limit is reached, so the model must answer.
    """
    resources = await aget_resources()
    llm = resources.settings.llm
    counter = resources.counter
    ctx = runtime.context
    system = ctx.system_prompt.format(now=datetime.now(UTC).isoformat(timespec="seconds"))
    if state.summary:
        system += f"\n\nSummary of the earlier conversation:\n{state.summary}"
    if state.memories:
        system += "\n\nWhat you remember about the user:\n- " + "\n- ".join(state.memories)
    window = _window(state)
    budget = llm.context_window - llm.max_tokens
    used = counter.count(system) + sum(counter.count(m.text) for m in window)
    sources = list(state.sources)
    while sources and used + counter.count(render_sources(sources)) > budget:
        sources.pop()
    if sources:
        system += "\n\n" + render_sources(sources)
    model = resources.chat_model
    if state.tool_steps < resources.settings.limits.max_tool_steps and resources.tools.tools:
        bound = model.bind_tools(resources.tools.tools)
        reply = await bound.ainvoke([SystemMessage(content=system), *window])
    else:
        reply = await model.ainvoke([SystemMessage(content=system), *window])
    return {"messages": [reply]}
