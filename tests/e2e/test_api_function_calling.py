"""OpenAI function calling on ``ragent serve``, with the official ``openai`` client.

The loops of the openai docs, unchanged: the client defines tools, the model calls one,
the response is ``tool_calls``, the client appends its results and asks again, and the
model answers with them. Streaming and not, ``tool_choice``, server tools in the same
message, and the requests a client gets wrong or a stranger forges.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.openai_server import OpenAIServer, Reply, ToolCalls

pytestmark = pytest.mark.e2e

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "pattern": "^[A-Za-z ]+$"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def _tool_message(call_id: str, content: str) -> dict[str, str]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _code(caught: pytest.ExceptionInfo[openai.APIStatusError]) -> tuple[str, str | None]:
    error = caught.value.body
    assert isinstance(error, dict)
    return error["code"], error["param"]


def test_the_docs_loop(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-loop"))
    model.plan(
        MODEL,
        ToolCalls([("get_weather", json.dumps({"city": "Paris"}))]),
        Reply("It is 18 degrees in Paris."),
    )
    messages: list[Any] = list(QUESTION)

    completion = client.chat.completions.create(model="ragent", messages=messages, tools=[WEATHER])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert "approvals" not in (choice.message.model_extra or {})  # not a server tool
    offered = {t["function"]["name"]: t["function"] for t in model.requests[0]["tools"]}
    assert offered["get_weather"] == WEATHER["function"]
    assert "calculator" in offered  # next to the server's own tools
    assert "tool_choice" not in model.requests[0]

    messages.append(choice.message)
    messages.append(_tool_message(call.id, "18 degrees, sunny"))
    final = client.chat.completions.create(model="ragent", messages=messages, tools=[WEATHER])

    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "It is 18 degrees in Paris."
    assert (final.model_extra or {})["conversation_id"] == (completion.model_extra or {})[
        "conversation_id"
    ]
    sent = model.requests[-1]["messages"]
    [asked] = [m for m in sent if m["role"] == "assistant" and m.get("tool_calls")]
    assert asked["tool_calls"][0]["id"] == call.id
    [result] = [m for m in sent if m["role"] == "tool"]
    assert (result["tool_call_id"], result["content"]) == (call.id, "18 degrees, sunny")
    assert [m["role"] for m in sent].count("user") == 1  # the same turn, continued

    with pytest.raises(openai.ConflictError) as caught:  # the same results again
        client.chat.completions.create(model="ragent", messages=messages, tools=[WEATHER])
    assert _code(caught)[0] == "nothing_to_resume"


def test_the_docs_loop_streamed(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-stream"))
    model.plan(
        MODEL,
        ToolCalls([("get_weather", json.dumps({"city": "Oslo"}))], text="Let me check."),
        Reply("Rainy in Oslo.", piece=3),
    )
    messages: list[Any] = list(QUESTION)

    stream = client.chat.completions.create(
        model="ragent", messages=messages, tools=[WEATHER], stream=True
    )
    calls: dict[int, Any] = {}
    text, finish = "", None
    for chunk in stream:  # as the openai docs accumulate streamed tool calls
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for tool_call in delta.tool_calls or []:
            if tool_call.index not in calls:
                calls[tool_call.index] = tool_call
            elif tool_call.function and tool_call.function.arguments:
                calls[tool_call.index].function.arguments += tool_call.function.arguments
        finish = chunk.choices[0].finish_reason or finish

    assert finish == "tool_calls"
    assert text == "Let me check."
    [call] = calls.values()
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}

    messages.append(
        {
            "role": "assistant",
            "content": text,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": call.function.model_dump()}
            ],
        }
    )
    messages.append(_tool_message(call.id, "rain, 9 degrees"))
    chunks = list(
        client.chat.completions.create(
            model="ragent", messages=messages, tools=[WEATHER], stream=True
        )
    )
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert answer == "Rainy in Oslo."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    [result] = [m for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert result["content"] == "rain, 9 degrees"


def test_tool_choice_reaches_the_model(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-choice"))
    model.plan(MODEL, Reply("one"), Reply("two"), Reply("three"))

    client.chat.completions.create(
        model="ragent", messages=QUESTION, tools=[WEATHER], tool_choice="required"
    )
    assert model.requests[-1]["tool_choice"] == "required"

    named = {"type": "function", "function": {"name": "get_weather"}}
    client.chat.completions.create(
        model="ragent",
        messages=QUESTION,
        tools=[WEATHER],
        tool_choice=named,  # type: ignore[arg-type]
    )
    assert model.requests[-1]["tool_choice"] == named

    client.chat.completions.create(
        model="ragent", messages=QUESTION, tools=[WEATHER], tool_choice="none"
    )
    assert "tools" not in model.requests[-1]

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="ragent",
            messages=QUESTION,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    assert _code(caught) == ("unknown_tool", "tool_choice.function.name")


def test_server_tools_run_beside_client_tools(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-mixed"))
    model.plan(
        MODEL,
        ToolCalls(
            [
                ("calculator", json.dumps({"expression": "6*7"})),
                ("get_weather", json.dumps({"city": "Rome"})),
            ]
        ),
        Reply("42, and sunny in Rome."),
    )
    paused = client.chat.completions.create(model="ragent", messages=QUESTION, tools=[WEATHER])
    [call] = paused.choices[0].message.tool_calls or []  # only the client's own tool
    assert call.function.name == "get_weather"

    done = client.chat.completions.create(
        model="ragent",
        messages=[*QUESTION, paused.choices[0].message, _tool_message(call.id, "sunny")],  # type: ignore[list-item]
        tools=[WEATHER],
    )
    assert done.choices[0].message.content == "42, and sunny in Rome."
    results = {m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"}
    assert results == {"42", "sunny"}


def test_malformed_arguments_go_back_to_the_model(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-malformed"))
    model.plan(
        MODEL,
        ToolCalls([("get_weather", json.dumps({"town": 5}))]),
        Reply("I could not look that up."),
    )
    done = client.chat.completions.create(model="ragent", messages=QUESTION, tools=[WEATHER])
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content == "I could not look that up."
    [error] = [m for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert "invalid arguments" in error["content"] and "city" in error["content"]


def test_results_that_do_not_fit_the_paused_run(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-owner"))
    stranger = api.openai(api.key("fc-stranger"))
    model.plan(
        MODEL,
        ToolCalls(
            [
                ("get_weather", json.dumps({"city": "Lyon"})),
                ("get_weather", json.dumps({"city": "Nice"})),
            ]
        ),
        Reply("Lyon and Nice are warm."),
    )
    paused = client.chat.completions.create(model="ragent", messages=QUESTION, tools=[WEATHER])
    first, second = paused.choices[0].message.tool_calls or []
    assert first.id != second.id
    asked: list[Any] = [*QUESTION, paused.choices[0].message]

    cases: list[tuple[openai.OpenAI, list[Any], tuple[str, str | None]]] = [
        (stranger, [*asked, _tool_message(first.id, "x"), _tool_message(second.id, "y")],
         ("unknown_tool_call", "messages[2].tool_call_id")),
        (client, [*asked, _tool_message("call_made_up", "x")],
         ("unknown_tool_call", "messages[2].tool_call_id")),
        (client, [*asked, _tool_message(first.id, "warm")],
         ("missing_tool_results", "messages")),
        (client, [*asked, _tool_message(first.id, "x"), _tool_message(first.id, "y")],
         ("duplicate_tool_result", "messages[3].tool_call_id")),
        (client, [*asked, {"role": "tool", "content": "no id"}],
         ("missing_tool_call_id", "messages[2].tool_call_id")),
    ]  # fmt: skip
    for caller, messages, expected in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            caller.chat.completions.create(model="ragent", messages=messages, tools=[WEATHER])
        assert _code(caught) == expected

    too_long = [*asked, _tool_message(first.id, "x" * 2001), _tool_message(second.id, "y")]
    with pytest.raises(openai.BadRequestError) as caught:  # over limits.max_input_chars
        client.chat.completions.create(model="ragent", messages=too_long, tools=[WEATHER])
    assert _code(caught) == ("context_length_exceeded", "messages[2].content")

    conversation = (paused.model_extra or {})["conversation_id"]
    with pytest.raises(openai.ConflictError) as busy:  # a new question while it waits
        client.chat.completions.create(
            model="ragent", messages=QUESTION, extra_body={"conversation_id": conversation}
        )
    assert _code(busy)[0] == "tool_results_pending"

    done = client.chat.completions.create(
        model="ragent",
        messages=[*asked, _tool_message(first.id, "warm"), _tool_message(second.id, "warm")],
        tools=[WEATHER],
    )
    assert done.choices[0].message.content == "Lyon and Nice are warm."


def test_tools_that_cannot_be_offered(api: Api, model: OpenAIServer) -> None:
    client = api.openai(api.key("fc-hostile"))

    def refused(tools: list[Any]) -> tuple[str, str | None]:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="ragent", messages=QUESTION, tools=tools)
        return _code(caught)

    huge = {"type": "object", "description": "x" * 17_000}
    big = {"type": "function", "function": {"name": "big", "parameters": huge}}
    assert refused([big]) == ("tool_schema_too_large", "tools[0].function.parameters")
    bad_name = {"type": "function", "function": {"name": "get weather!"}}
    assert refused([bad_name])[1] == "tools[0].function.name"
    long_name = {"type": "function", "function": {"name": "n" * 65}}
    assert refused([long_name])[1] == "tools[0].function.name"
    not_schema = {"type": "function", "function": {"name": "f", "parameters": {"type": 7}}}
    assert refused([not_schema]) == ("invalid_tool_schema", "tools[0].function.parameters")
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    nested = {"type": "function", "function": {"name": "f", "parameters": deep}}
    assert refused([nested]) == ("invalid_tool_schema", "tools[0].function.parameters")
    assert refused([WEATHER, WEATHER]) == ("duplicate_tool", "tools[1].function.name")
    assert model.requests == []
