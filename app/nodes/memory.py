"""Memory nodes: recall before answering, compress the history after."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from app.context import Context
from app.memory.summary import fold_point, summarise, window_tokens
from app.resources import aget_resources
from app.state import AgentState

__all__ = ["compress_memory", "load_memory", "memory_namespace"]


def memory_namespace(ctx: Context) -> tuple[str, ...]:
    """Return the long-term memory namespace of the caller (tenant and user scoped)."""
    return ("memories", ctx.tenant_id, ctx.user_id)


async def load_memory(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Recall the caller's long-term memories most relevant to the new message.

    The recent window and the running summary are already in the state; they
    are assembled into the prompt by ``respond``.
    """
    if runtime.store is None:
        return {}
    question = state.messages[-1].text
    items = await runtime.store.asearch(memory_namespace(runtime.context), query=question, limit=5)
    memories = [str(item.value.get("text", "")) for item in items if item.value.get("text")]
    return {"memories": memories}


async def compress_memory(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Summarise older turns once the live history passes the budget threshold.

    Messages stay in the checkpoint; only ``summarized_count`` moves, so the
    context window shrinks while nothing is lost.
    """
    resources = await aget_resources()
    limits = resources.settings.limits
    window = state.messages[state.summarized_count :]
    budget = limits.history_token_budget
    if window_tokens(window, resources.counter) <= limits.compress_ratio * budget:
        return {}
    end = fold_point(state.messages, state.summarized_count, limits.keep_recent_messages)
    if end == state.summarized_count:
        return {}
    # A summary gets at most a quarter of the budget, at about 4 characters a token.
    summary = await summarise(
        resources.chat_model,
        state.summary,
        state.messages[state.summarized_count : end],
        max_chars=budget,
    )
    return {"summary": summary, "summarized_count": end}
