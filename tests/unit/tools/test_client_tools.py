"""Client tools (OpenAI function calling): ids, argument checks, the pause and the resume."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.graphs.agent import compile_agent
from app.resources import Resources, use_resources
from app.tools.client import (
    NO_CALL_OFFLINE,
    check_args,
    forces_choice,
    name_calls,
    result_messages,
    thread_of_call,
)
from app.turns import ask, resume
from tests.tooling import CTX, calls, with_model

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_client_call_ids_name_their_thread() -> None:
    reply = calls(("get_weather", {"city": "Oslo"}), ("calculator", {"expression": "1"}))
    named = name_calls(reply, {"get_weather"}, "thread.1:x")
    mine, theirs = named.tool_calls
    assert thread_of_call(mine["id"] or "") == "thread.1:x"
    assert theirs["id"] == "c1"  # a server tool's call keeps its id
    again = name_calls(reply, {"get_weather"}, "thread.1:x").tool_calls[0]["id"]
    assert again != mine["id"]
    for foreign in ("c0", "call_abc", "call_0123456789abcdef_", "call_0123456789abcdef_a/b"):
        assert thread_of_call(foreign) is None


def test_arguments_are_checked_without_regular_expressions() -> None:
    schema = WEATHER["function"]["parameters"]
    assert check_args(schema, {"city": "Oslo"}) == []
    assert check_args(schema, {}) == ["$: 'city' is a required property"]
    assert check_args(schema, "Oslo") == ["$: the arguments must be a JSON object"]
    assert check_args(None, {"anything": 1}) == []
    # A pattern that backtracks for ages on this input under re: not matched at all.
    evil = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    started = time.monotonic()
    assert check_args(evil, {"s": "a" * 40 + "!"}) == []
    assert time.monotonic() - started < 1
    keyed = {
        "type": "object",
        "patternProperties": {"^x_": {"type": "string"}},
        "additionalProperties": False,
        "properties": {"pattern": {"type": "integer"}},
    }
    assert check_args(keyed, {"x_a": "1", "pattern": 2}) == []  # a property named "pattern"
    assert check_args(keyed, {"pattern": "two"}) == ["$.pattern: 'two' is not of type 'integer'"]
    assert check_args({"$ref": "https://example.com/schema"}, {}) == []  # never fetched


def test_tool_choice_holds_for_the_first_call_of_a_request() -> None:
    asked = calls(("get_weather", {"city": "Oslo"}), ("calculator", {"expression": "1"}))
    client = ToolMessage("sunny", tool_call_id="a", name="get_weather")
    server = ToolMessage("1", tool_call_id="b", name="calculator")
    assert forces_choice([HumanMessage("hi")], {"get_weather"})
    assert forces_choice([HumanMessage("hi"), asked, server, client], {"get_weather"})
    assert not forces_choice([HumanMessage("hi"), asked, server], {"get_weather"})
    assert not forces_choice([HumanMessage("hi"), AIMessage("hello")], {"get_weather"})


def test_results_become_tool_messages() -> None:
    asked = calls(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"}))
    first, second = result_messages(asked.tool_calls, {"results": {"c0": "x" * 500}}, 300)
    assert first.status == "success" and len(first.text) == 300 and "truncated" in first.text
    assert second.status == "error" and second.tool_call_id == "c1"


async def test_a_client_call_pauses_the_run_until_its_result(resources: Resources) -> None:
    ask_weather = calls(("get_weather", {"city": "Oslo"}), ("calculator", {"expression": "6*7"}))
    res, model = with_model(resources, [ask_weather, AIMessage("42, and sunny in Oslo.")])
    context = replace(CTX, client_tools=[WEATHER], tool_choice="required")
    with use_resources(res):
        agent = compile_agent(InMemorySaver())
        paused = await ask(agent, "weather?", context=context, thread_id="w", max_chars=8000)
        [call] = paused.client_calls
        assert (call["name"], call["args"]) == ("get_weather", {"city": "Oslo"})
        assert thread_of_call(call["id"]) == "w"
        assert "client_calls" in paused.as_dict() and not paused.approvals
        assert "get_weather" in model.bound_tools and "calculator" in model.bound_tools

        results = {"results": {call["id"]: "sunny"}}
        done = await resume(agent, results, context=context, thread_id="w")
    assert done.answer == "42, and sunny in Oslo." and done.client_calls == []
    answers = {m.name: m.text for m in model.calls[1] if isinstance(m, ToolMessage)}
    assert answers == {"get_weather": "sunny", "calculator": "42"}


async def test_offline_a_forced_client_call_is_said_to_fail(resources: Resources) -> None:
    forced = replace(CTX, client_tools=[WEATHER], tool_choice="get_weather")
    with use_resources(resources):  # the offline answerer, which never calls client tools
        agent = compile_agent(InMemorySaver())
        answer = await ask(agent, "weather in Oslo?", context=forced, thread_id="o", max_chars=8000)
        assert answer.answer == NO_CALL_OFFLINE and answer.client_calls == []
        free = replace(forced, tool_choice=None)
        answer = await ask(agent, "weather in Oslo?", context=free, thread_id="p", max_chars=8000)
    assert answer.answer != NO_CALL_OFFLINE
