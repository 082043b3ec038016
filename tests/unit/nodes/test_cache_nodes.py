"""Which turns take part in the answer cache, and what their span says."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from app.context import Context
from app.nodes.cache import after_answer, after_lookup, cacheable
from app.nodes.route import after_route
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
        replace(FIRST, memories=["the user prefers French"]),
        replace(FIRST, summary="earlier turns"),
        AgentState(
            messages=[HumanMessage(content="hi"), AIMessage(content="hello"), *FIRST.messages],
            route="rag",
        ),
    ],
    ids=["memories", "summary", "history"],
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


def test_only_a_pending_turn_takes_the_cache_steps() -> None:
    assert after_route(replace(FIRST, cache="pending")) == "lookup_answer"
    assert after_route(FIRST) == "retrieve"
    assert after_route(replace(FIRST, route="direct")) == "respond"
    assert after_lookup(replace(FIRST, cache="hit")) == "compress_memory"
    assert after_lookup(replace(FIRST, cache="miss")) == "retrieve"
    assert after_answer(replace(FIRST, cache="miss")) == "store_answer"
    assert after_answer(replace(FIRST, cache="hit")) == "compress_memory"
    assert after_answer(FIRST) == "compress_memory"
