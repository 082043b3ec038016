"""Tool calls written as text by an open model run as tool calls, through the real chain.

The model is a real HTTP server (:mod:`tests.openai_server`) that writes its calls into
the message text the way Qwen2.5 on llama.cpp does, instead of ``tool_calls``.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.answer import Answer
from app.context import Context
from app.conversations import thread_config
from app.graphs.agent import compile_agent
from app.llm.factory import build_models
from app.llm.tool_recovery import RECOVERED_TOOL_CALLS
from app.observability.metrics import REGISTRY
from app.resources import Resources
from app.settings import LLMSettings, ModelEndpoint
from app.turns import Token, ask, stream_ask
from tests.openai_server import OpenAIServer, Reply
from tests.tooling import audit
from tests.unit.llm.remote import remote_agent, remote_chain, remote_llm

MODEL = "open-model"
CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}
AS_TEXT = '{"name": "calculator", "arguments": {"expression": "17*23"}}'
HERMES = f"Let me compute that.\n<tool_call>\n{AS_TEXT}\n</tool_call>"


def _llm(server: OpenAIServer, **fields: Any) -> LLMSettings:
    return remote_llm(server, MODEL, **fields)


def _chain(server: OpenAIServer, **fields: Any) -> AbstractAsyncContextManager[BaseChatModel]:
    return remote_chain(server, MODEL, **fields)


def _recovered_total(fmt: str) -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "ragent_model_recovered_tool_calls"
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels["format"] == fmt
        and sample.labels["model"].startswith(f"{MODEL}@")
    )


@pytest.mark.parametrize(("text", "fmt"), [(AS_TEXT, "json"), (HERMES, "hermes")])
async def test_a_call_written_as_text_comes_back_as_a_tool_call(
    model: OpenAIServer, text: str, fmt: str
) -> None:
    model.plan(MODEL, Reply(text))

    async with _chain(model) as chain:
        reply = await chain.bind_tools([CALC]).ainvoke([HumanMessage("What is 17*23?")])

    assert isinstance(reply, AIMessage)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("calculator", {"expression": "17*23"})
    ]
    assert reply.response_metadata[RECOVERED_TOOL_CALLS] == fmt
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert "<tool_call>" not in reply.text and AS_TEXT not in reply.text


async def test_recovery_is_off_when_configured_and_for_openai(model: OpenAIServer) -> None:
    model.plan(MODEL, Reply(AS_TEXT))
    async with _chain(model, tool_call_recovery="off") as chain:
        reply = await chain.bind_tools([CALC]).ainvoke([HumanMessage("What is 17*23?")])
    assert reply.tool_calls == [] and reply.text == AS_TEXT

    native = LLMSettings(base_url="https://api.openai.com/v1", model="gpt-4o-mini")
    [backend] = build_models(native).default.model.backends  # type: ignore[attr-defined]
    assert backend.recover_chars == 0
    local = native.model_copy(update={"base_url": "http://127.0.0.1:8080/v1"})
    assert build_models(local).default.model.backends[0].recover_chars > 0  # type: ignore[attr-defined]
    forced = native.model_copy(
        update={"fallbacks": [ModelEndpoint(model="m", tool_call_recovery="on")]}
    )
    backends = build_models(forced).default.model.backends  # type: ignore[attr-defined]
    assert [b.recover_chars > 0 for b in backends] == [False, True]


async def test_a_call_to_a_tool_not_bound_stays_text(model: OpenAIServer) -> None:
    other = '{"name": "rm_rf", "arguments": {"path": "/"}}'
    model.plan(MODEL, Reply(other))
    async with _chain(model) as chain:
        reply = await chain.bind_tools([CALC]).ainvoke([HumanMessage("What is 17*23?")])
    assert reply.tool_calls == [] and reply.text == other


def _agent_resources(
    resources: Resources, model: OpenAIServer
) -> AbstractAsyncContextManager[Resources]:
    return remote_agent(resources, model, MODEL)


@pytest.mark.parametrize("text", [AS_TEXT, HERMES], ids=["json", "hermes"])
async def test_the_agent_runs_a_recovered_call_and_never_streams_it(
    resources: Resources, model: OpenAIServer, text: str
) -> None:
    before = _recovered_total("json" if text == AS_TEXT else "hermes")
    model.plan(MODEL, Reply(text, piece=3), Reply("17 times 23 is 391."))

    async with _agent_resources(resources, model):
        agent = compile_agent(InMemorySaver())
        events = [
            e
            async for e in stream_ask(
                agent, "What is 17*23?", context=Context(), thread_id="t", max_chars=4000
            )
        ]

    answer = events[-1]
    assert isinstance(answer, Answer)
    assert "391" in answer.answer
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert "calculator" not in streamed and "<tool_call>" not in streamed
    assert "391" in streamed
    # The calculator ran: its result went back to the model as a tool message.
    second = model.requests[1]["messages"]
    [result] = [m for m in second if m["role"] == "tool"]
    assert result["content"].strip() == "391"
    [asked] = [m for m in second if m["role"] == "assistant"]
    assert json.loads(asked["tool_calls"][0]["function"]["arguments"]) == {"expression": "17*23"}
    after = _recovered_total("json" if text == AS_TEXT else "hermes")
    assert after == before + 1
    [record] = audit(resources.settings)
    assert (record["tool"], record["outcome"]) == ("calculator", "ok")
    assert record["recovered_from_text"] == ("json" if text == AS_TEXT else "hermes")


async def test_a_recovered_call_that_fails_its_schema_goes_back_to_the_model(
    resources: Resources, model: OpenAIServer
) -> None:
    # As Qwen2.5-Coder-0.5B wrote it: the unit converter's arguments given to the calculator.
    wrong = '{"name": "calculator", "arguments": {"expression": "3 * 1000", "from_unit": "kg"}}'
    model.plan(MODEL, Reply(wrong), Reply(AS_TEXT), Reply("17 times 23 is 391."))
    async with _agent_resources(resources, model):
        agent = compile_agent(InMemorySaver())
        answer = await ask(
            agent, "What is 17*23?", context=Context(), thread_id="t", max_chars=4000
        )
    assert answer.answer == "17 times 23 is 391."
    # The wrong call never ran: the model got the validation error and called again.
    second = model.requests[1]["messages"]
    [refusal] = [m for m in second if m["role"] == "tool"]
    assert "from_unit" in refusal["content"]
    third = model.requests[2]["messages"]
    assert [m["content"].strip() for m in third if m["role"] == "tool"][-1] == "391"
    outcomes = [(r["tool"], r["outcome"]) for r in audit(resources.settings)]
    assert outcomes[-1] == ("calculator", "ok") and len(outcomes) == 2
    assert outcomes[0][1] != "ok"


async def test_a_call_asked_for_again_gets_its_own_id(
    resources: Resources, model: OpenAIServer
) -> None:
    model.plan(MODEL, Reply(AS_TEXT), Reply(AS_TEXT))
    async with _agent_resources(resources, model):
        agent = compile_agent(InMemorySaver())
        await ask(agent, "What is 17*23?", context=Context(), thread_id="t", max_chars=4000)
        state = await agent.aget_state(thread_config(Context(), "t"))
    ids = [
        c["id"] for m in state.values["messages"] if isinstance(m, AIMessage) for c in m.tool_calls
    ]
    assert len(ids) == 2 and len(set(ids)) == 2


async def test_a_reply_that_only_looks_like_a_call_is_answered_as_text(
    resources: Resources, model: OpenAIServer
) -> None:
    text = '{"answer": "I cannot say."}'
    model.plan(MODEL, Reply(text))
    async with _agent_resources(resources, model):
        agent = compile_agent(InMemorySaver())
        answer = await ask(
            agent, "What is 17*23?", context=Context(), thread_id="t", max_chars=4000
        )
    assert answer.answer == text
    assert len(model.requests) == 1
