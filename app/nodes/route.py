"""Cheap routing: retrieval-augmented or direct, the model tier, the standalone query."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from app.context import Context
from app.llm.deadline import current_deadline, deadline_passed
from app.llm.tiers import Tier, TierRules, classify_tier, rule_tier
from app.nodes.cache import cacheable
from app.resources import Resources, aget_resources
from app.retrieval.types import SearchFilter, namespace_tenant
from app.state import AgentState
from app.text.intents import (
    asks_for_time,
    find_arithmetic,
    find_conversion,
    find_note_request,
    standalone_question,
)
from app.text.small_talk import is_small_talk

__all__ = [
    "after_route",
    "answers_directly",
    "pick_tier",
    "route",
    "select_path",
    "standalone_query",
]

log = logging.getLogger(__name__)


def standalone_query(messages: list[Any]) -> str:
    """Return the retrieval query for the last human message (see ``standalone_question``)."""
    return standalone_question([m.text for m in messages if isinstance(m, HumanMessage)])


def answers_directly(question: str) -> bool:
    """Return whether a question goes ``direct`` by its text alone (no retrieval).

    Small talk, arithmetic, unit conversions, time questions and requests to save a note;
    ``route`` also goes direct when the caller has nothing indexed.
    """
    return bool(
        is_small_talk(question)
        or find_arithmetic(question)
        or find_conversion(question)
        or asks_for_time(question)
        or find_note_request(question)
    )


async def pick_tier(question: str, resources: Resources) -> Tier:
    """Pick the model tier: by rules, or by the small model when ``llm.router`` is ``llm``.

    The classifier gets ``llm.timeout_s``, within the turn's model deadline; when it
    fails, replies with invalid JSON after one repair, or the deadline has passed, the
    rules decide.
    """
    llm = resources.settings.llm
    rules = TierRules(llm.small_max_words, llm.min_confidence)
    deadline = current_deadline()
    if llm.router == "llm" and not deadline_passed():
        wait = llm.timeout_s if deadline is None else min(llm.timeout_s, deadline.remaining())
        try:
            async with asyncio.timeout(wait):
                return await classify_tier(resources.model_for("small").model, question)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the rules
            log.warning("tier classifier failed (%s); using the rules", type(exc).__name__)
    return rule_tier(question, rules)


async def route(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Pick ``rag`` or ``direct``, and the model tier, with cheap rules.

    Small talk, arithmetic, time questions and an empty index (in the context's
    ``namespace``) go ``direct``; the tier comes from :func:`pick_tier`. A ``rag`` turn
    that may use the answer cache (``cache.enabled`` and :func:`cacheable`) is marked
    ``pending`` for ``lookup_answer``.
    """
    resources = await aget_resources()
    question = state.messages[-1].text
    query = standalone_query(state.messages)
    tier = await pick_tier(question, resources)
    if answers_directly(question):
        return {"route": "direct", "query": query, "tier": tier}
    ctx = runtime.context
    flt = SearchFilter(namespace_tenant(ctx.tenant_id, ctx.namespace), frozenset(ctx.acl_groups))
    indexed = await resources.retriever.has_visible(flt)
    pending = indexed and resources.settings.cache.enabled and cacheable(state, ctx)
    return {
        "route": "rag" if indexed else "direct",
        "query": query,
        "tier": tier,
        "cache": "pending" if pending else "",
    }


def select_path(state: AgentState) -> Literal["retrieve", "respond"]:
    """Send ``rag`` turns through retrieval."""
    return "retrieve" if state.route == "rag" else "respond"


def after_route(state: AgentState) -> Literal["lookup_answer", "retrieve", "respond"]:
    """Look the answer cache up first for a turn ``route`` marked ``pending``."""
    return "lookup_answer" if state.cache == "pending" else select_path(state)
