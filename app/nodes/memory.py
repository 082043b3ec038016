"""Memory nodes: recall before answering; after it, remember facts and compress history."""

from __future__ import annotations

import logging
import time
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from app.context import Context
from app.llm.offline.answerer import ExtractiveAnswerer
from app.memory.extract import model_facts
from app.memory.longterm import MemoryBank, Origin
from app.memory.namespaces import namespace
from app.memory.summary import fit_tokens, fold_point, summarise, window_tokens
from app.resources import Resources, aget_resources
from app.state import AgentState
from app.text.facts import explicit_facts

__all__ = ["compress_memory", "load_memory", "memory_namespace"]

log = logging.getLogger(__name__)


def memory_namespace(ctx: Context) -> tuple[str, ...]:
    """Return the long-term memory namespace of the caller (tenant and user scoped)."""
    return namespace("memories", ctx.tenant_id, ctx.user_id)


async def load_memory(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Start the turn's clock and recall the caller's memories most relevant to it.

    The recent window and the running summary are already in the state; ``respond``
    assembles them into the prompt. A store failure costs the recall, not the turn.
    """
    update: dict[str, Any] = {"turn_started_at": time.time()}
    if runtime.store is None:
        return update
    settings = (await aget_resources()).settings.memory
    ctx = runtime.context
    try:
        recalled = await MemoryBank(runtime.store, settings).recall(
            ctx.tenant_id, ctx.user_id, state.messages[-1].text
        )
    except Exception as exc:  # noqa: BLE001 - recall is best effort
        log.warning("memory recall failed: %s", type(exc).__name__)
        return update
    return {**update, "memories": [m.text for m in recalled]}


def _generative(resources: Resources) -> bool:
    return not isinstance(resources.chat_model, ExtractiveAnswerer)


async def _remember(state: AgentState, runtime: Runtime[Context], resources: Resources) -> None:
    """Store the durable facts of the turn that just ended in the user's memories."""
    settings = resources.settings.memory
    humans = [m for m in state.messages if isinstance(m, HumanMessage)]
    if runtime.store is None or settings.extraction == "off" or not humans:
        return
    question, answer = humans[-1].text, state.messages[-1].text
    facts: list[tuple[str, Origin]] = [(fact, "explicit") for fact in explicit_facts(question)]
    if settings.extraction == "llm" or (settings.extraction == "auto" and _generative(resources)):
        model = resources.model_for("small").model
        facts += [(fact, "llm") for fact in await model_facts(model, question, answer)]
    bank = MemoryBank(runtime.store, settings)
    ctx = runtime.context
    for fact, origin in facts:
        try:
            await bank.remember(ctx.tenant_id, ctx.user_id, fact, origin=origin)
        except Exception as exc:  # noqa: BLE001 - a lost memory must not fail the turn
            log.warning("remembering a fact failed: %s", type(exc).__name__)


async def compress_memory(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Remember the turn's durable facts, then fold older turns into the running summary.

    The fold happens once the summary and the live history pass ``compress_ratio`` of
    the history token budget. Messages stay in the checkpoint; only
    ``summarized_count`` moves, so the context window shrinks while nothing is lost. The
    summary keeps to a quarter of the budget.
    """
    resources = await aget_resources()
    await _remember(state, runtime, resources)
    limits = resources.settings.limits
    counter = resources.counter
    budget = limits.history_token_budget
    window = state.messages[state.summarized_count :]
    used = window_tokens(window, counter) + counter.count(state.summary)
    if used <= limits.compress_ratio * budget:
        return {}
    end = fold_point(state.messages, state.summarized_count, limits.keep_recent_messages)
    if end == state.summarized_count:
        return {}
    summary = await summarise(
        resources.chat_model,
        state.summary,
        state.messages[state.summarized_count : end],
        max_chars=budget,
        extractive=resources.settings.memory.summarizer == "extractive",
    )
    return {"summary": fit_tokens(summary, counter, budget // 4), "summarized_count": end}
