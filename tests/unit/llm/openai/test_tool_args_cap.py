"""Streamed tool-call arguments: never parsed piecemeal on the event loop, and capped in size.

LangChain repairs a partial JSON fragment by dropping one character at a time and parsing
again: a 200 KB argument streamed in two fragments blocked the event loop for 33 s. The
model is a real HTTP server (:mod:`tests.openai_server`) that streams a 200 KB argument
in two fragments, as vLLM does; a ticker on the same loop measures its longest stall.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.graphs.agent import compile_agent
from app.llm.openai.transport import sse_data
from app.resources import Resources
from app.settings import LLMSettings
from app.turns import ask
from tests.openai_server import OpenAIServer, Reply, ToolCalls
from tests.unit.llm.remote import remote_agent, remote_chain, remote_llm

MODEL = "tool-model"
BIG = json.dumps({"expression": "1+" * 100_000 + "1"})  # about 200 KB
CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}
MAX_GAP_S = 1.0
"""The longest the event loop may stall: the old parsing took 33 s, the new one milliseconds."""


def _llm(server: OpenAIServer, **fields: Any) -> LLMSettings:
    return remote_llm(server, MODEL, **fields)


def _chain(server: OpenAIServer, **fields: Any) -> AbstractAsyncContextManager[BaseChatModel]:
    return remote_chain(server, MODEL, **fields)


async def _longest_stall(work: Any) -> tuple[Any, float]:
    """Run ``work`` while a ticker on the same loop records its longest gap."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        done.set()
        await ticker
    return result, max(gaps, default=0.0)


async def test_a_200_kb_argument_in_two_fragments_never_stalls_the_loop(
    model: OpenAIServer,
) -> None:
    model.plan(MODEL, ToolCalls([("calculator", BIG)], fragment=len(BIG) // 2 + 1))

    async with _chain(model, max_tool_args_bytes=1_000_000) as chain:
        reply, stall = await _longest_stall(
            chain.bind_tools([CALC]).ainvoke([HumanMessage("Add these up.")])
        )

    assert isinstance(reply, AIMessage)
    assert [c["args"] for c in reply.tool_calls] == [json.loads(BIG)]  # whole and intact
    assert stall < MAX_GAP_S, f"the event loop stalled for {stall:.1f} s"


async def test_arguments_over_the_cap_are_refused_without_stalling_the_loop(
    model: OpenAIServer,
) -> None:
    model.plan(MODEL, ToolCalls([("calculator", BIG)], fragment=len(BIG) // 2 + 1))

    async with _chain(model) as chain:  # the default cap, 64 KiB
        reply, stall = await _longest_stall(
            chain.bind_tools([CALC]).ainvoke([HumanMessage("Add these up.")])
        )

    assert stall < MAX_GAP_S, f"the event loop stalled for {stall:.1f} s"
    (call,) = reply.tool_calls
    assert call["name"] == "calculator" and call["args"] == {}
    refused = reply.response_metadata["refused_tool_calls"]
    assert "longer than 65536 bytes" in refused[call["id"]]


async def test_only_the_call_that_passes_the_cap_is_refused(model: OpenAIServer) -> None:
    small = json.dumps({"expression": "6*7"})
    model.plan(MODEL, ToolCalls([("calculator", small), ("calculator", BIG)], fragment=50_000))

    async with _chain(model) as chain:
        reply = await chain.bind_tools([CALC]).ainvoke([HumanMessage("Two sums.")])

    first, second = reply.tool_calls
    assert first["args"] == {"expression": "6*7"}
    assert second["args"] == {}
    assert list(reply.response_metadata["refused_tool_calls"]) == [second["id"]]


async def test_the_model_is_told_its_call_was_too_long_and_the_turn_goes_on(
    resources: Resources, model: OpenAIServer
) -> None:
    model.plan(
        MODEL,
        ToolCalls([("calculator", BIG)], fragment=len(BIG) // 2 + 1),
        Reply("That sum is too long for me to compute."),
    )
    async with remote_agent(resources, model, MODEL):
        agent = compile_agent(InMemorySaver())
        answer = await ask(
            agent, "What is 1+1+1...?", context=Context(), thread_id="t", max_chars=4000
        )

    assert answer.answer == "That sum is too long for me to compute."
    second = model.requests[1]["messages"]
    tool = next(m for m in second if m["role"] == "tool")
    assert "longer than 65536 bytes, so it was not run" in tool["content"]


async def test_a_stream_line_past_the_limit_is_refused() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"data: {"
        for _ in range(100):
            yield b"x" * 1000

    with pytest.raises(ValueError, match="longer than 50000 bytes"):
        _ = [data async for data in sse_data(pieces(), max_line_bytes=50_000)]


def test_the_cap_is_a_setting_with_a_floor() -> None:
    assert LLMSettings().max_tool_args_bytes == 65536
    with pytest.raises(ValueError, match="max_tool_args_bytes"):
        LLMSettings(max_tool_args_bytes=10)
