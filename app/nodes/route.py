"""Cheap routing: retrieval-augmented or direct, plus the standalone retrieval query."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from app.context import Context
from app.llm.intents import asks_for_time, find_arithmetic, standalone_question
from app.resources import aget_resources
from app.retrieval.types import SearchFilter
from app.state import AgentState

__all__ = ["route", "select_path", "standalone_query"]

_SMALL_TALK = re.compile(
    r"^\s*(hi|hello|hey|thanks|thank you|good (morning|afternoon|evening)|bye)\b[\s!.,]*$",
    re.IGNORECASE,
)


def standalone_query(messages: list[Any]) -> str:
    """Return the retrieval query for the last human message (see ``standalone_question``)."""
    return standalone_question([m.text for m in messages if isinstance(m, HumanMessage)])


async def route(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Pick ``rag`` or ``direct`` with rules: small talk, arithmetic, time, or an empty index."""
    question = state.messages[-1].text
    query = standalone_query(state.messages)
    if _SMALL_TALK.match(question) or find_arithmetic(question) or asks_for_time(question):
        return {"route": "direct", "query": query}
    ctx = runtime.context
    flt = SearchFilter(ctx.tenant_id, frozenset(ctx.acl_groups))
    indexed = await asyncio.to_thread((await aget_resources()).retriever.keywords.count, flt)
    return {"route": "rag" if indexed else "direct", "query": query}


def select_path(state: AgentState) -> Literal["retrieve", "respond"]:
    """Send ``rag`` turns through retrieval."""
    return "retrieve" if state.route == "rag" else "respond"
