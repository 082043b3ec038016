"""Which turns take part in the answer cache, and what their span says."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from app.context import Context
from app.nodes.cache import cacheable
from app.observability.graph import describe
from app.state import AgentState

CTX = Context(tenant_id="t", user_id="u")
FIRST = AgentState(
    messages=[HumanMessage(content="How often does SQLite checkpoint?")], route="rag"
)


def test_a_first_retrieval_turn_takes_part() -> None:
    assert cacheable(FIRST, CTX)


@pytest.mark.parametrize(
    "state",
    [
        replace(FIRST, route="direct"),
        replace(FIRST, memories=["the user prefers French"]),
        replace(FIRST, summary="earlier turns"),
        AgentState(
            messages=[HumanMessage(content="hi"), AIMessage(content="hello"), *FIRST.messages],
            route="rag",
        ),
    ],
    ids=["direct", "memories", "summary", "history"],
)
def test_turns_that_depend_on_the_user_or_the_thread_take_no_part(state: AgentState) -> None:
    assert not cacheable(state, CTX)


@pytest.mark.parametrize(
    "ctx",
    [
        replace(CTX, cache=False),
        replace(CTX, tool_choice="required"),
        replace(CTX, response_format={"type": "json_object"}),
        replace(CTX, client_tools=[{"type": "function", "function": {"name": "f"}}]),
    ],
    ids=["bypass", "tool_choice", "response_format", "client_tools"],
)
def test_requests_that_shape_the_answer_otherwise_take_no_part(ctx: Context) -> None:
    assert not cacheable(FIRST, ctx)


def test_the_lookup_span_says_whether_it_hit() -> None:
    assert describe("lookup_answer", {"cache": "hit"}) == {"cache_hit": True}
    assert describe("lookup_answer", {"cache": "miss"}) == {"cache_hit": False}
    assert describe("lookup_answer", {"cache": ""}) == {"cache_hit": None}
