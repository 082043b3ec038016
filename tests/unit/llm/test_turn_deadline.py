"""One deadline per turn: a hung model server costs a turn one timeout, not one per model call.

Every model call of a turn (the router, the answer, memory extraction and its repair, the
summary) shares the turn's deadline, so once the answer has fallen back to the offline
answerer, nothing after it waits on the model again. The model is a real HTTP server
(:mod:`tests.openai_server`) that accepts the request and never answers, or streams a
few tokens and then stalls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.answer import Answer
from app.context import Context
from app.graphs.agent import compile_agent
from app.llm.deadline import turn_deadline
from app.llm.factory import build_models
from app.memory.extract import model_facts
from app.memory.store import open_store
from app.memory.summary import summarise
from app.resources import Resources, use_resources
from app.settings import LLMSettings
from app.turns import ask, stream_ask
from tests.fakes import HashEmbedder
from tests.openai_server import Hang, OpenAIServer, Stall

MODEL = "hung-model"
TIMEOUT_S = 2.0
QUESTION = "Remember that my favourite colour is teal. What is the capital of France?"
CTX = Context(tenant_id="t1", user_id="u1")


def _llm(server: OpenAIServer, **fields: Any) -> LLMSettings:
    return LLMSettings(
        base_url=server.base_url,
        model=MODEL,
        timeout_s=TIMEOUT_S,
        stall_timeout_s=1.0,
        backoff_s=0.01,
        max_retries=2,
        **fields,
    )


@pytest.fixture
async def remote(resources: Resources, model: OpenAIServer) -> AsyncIterator[Resources]:
    """The agent's resources with the scripted server as every tier's model."""
    async with _remote(resources, model) as res:
        yield res


@asynccontextmanager
async def _remote(
    resources: Resources, model: OpenAIServer, **fields: Any
) -> AsyncIterator[Resources]:
    settings = resources.settings.model_copy(deep=True)
    settings.llm = _llm(model, **fields)
    settings.memory.extraction = "llm"
    settings.memory.summarizer = "model"
    models = build_models(settings.llm)
    res = replace(resources, settings=settings, chat_model=models.default.model, models=models)
    try:
        with use_resources(res):
            yield res
    finally:
        await models.aclose()


@asynccontextmanager
async def _chain(model: OpenAIServer) -> AsyncIterator[BaseChatModel]:
    models = build_models(_llm(model))
    try:
        yield models.default.model
    finally:
        await models.aclose()


def _asked_after_the_answer(model: OpenAIServer) -> list[dict[str, Any]]:
    """Requests that asked for JSON: memory extraction and the router's classification."""
    return [r for r in model.requests if "response_format" in r]


async def _turn(resources: Resources, streamed: bool) -> tuple[Answer, float]:
    async with open_store(resources.settings, HashEmbedder()) as store:
        agent = compile_agent(InMemorySaver(), store)
        started = time.monotonic()
        if streamed:
            events = [
                e
                async for e in stream_ask(
                    agent, QUESTION, context=CTX, thread_id="t", max_chars=4000
                )
            ]
            answer = events[-1]
            assert isinstance(answer, Answer)
        else:
            answer = await ask(agent, QUESTION, context=CTX, thread_id="t", max_chars=4000)
        elapsed = time.monotonic() - started
        return answer, elapsed


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
async def test_a_hung_model_costs_the_turn_one_timeout(
    remote: Resources, model: OpenAIServer, streamed: bool
) -> None:
    model.plan(MODEL, *[Hang() for _ in range(10)])

    answer, elapsed = await _turn(remote, streamed)

    assert answer.answer  # the offline answerer replied
    # The answer waited one timeout; memory extraction and its repair never asked the
    # model (before: one timeout each, three in all).
    assert model.calls(MODEL) == 1
    assert _asked_after_the_answer(model) == []
    assert elapsed < 2 * TIMEOUT_S, elapsed


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
async def test_a_model_that_stalls_mid_stream_costs_the_turn_one_timeout(
    remote: Resources, model: OpenAIServer, streamed: bool
) -> None:
    model.plan(MODEL, *[Stall("Paris is the capital of", after=2) for _ in range(10)])

    answer, elapsed = await _turn(remote, streamed)

    assert answer.answer
    assert _asked_after_the_answer(model) == []
    # Attempts start only before the deadline; the last may stall for stall_timeout_s.
    assert elapsed < 2 * TIMEOUT_S + 1.0, elapsed


async def test_the_llm_router_shares_the_turn_deadline(
    resources: Resources, model: OpenAIServer
) -> None:
    model.plan(MODEL, *[Hang() for _ in range(10)])

    async with _remote(resources, model, router="llm") as res:
        answer, elapsed = await _turn(res, streamed=False)

    assert answer.answer
    # The classifier waited out the deadline; the answer went offline at once, with no
    # request of its own. (On a loaded machine the classifier's request may not even
    # reach the server within the deadline, hence at most one.)
    assert model.calls(MODEL) <= 1
    assert _asked_after_the_answer(model) == model.requests  # only the classifier asked
    assert elapsed < 2 * TIMEOUT_S, elapsed


async def test_work_after_a_spent_deadline_never_asks_the_model(model: OpenAIServer) -> None:
    model.plan(MODEL, *[Hang() for _ in range(10)])
    turns = [HumanMessage("My name is Ada."), AIMessage("Nice to meet you, Ada.")]

    async with _chain(model) as chain:
        with turn_deadline(0.5) as deadline:
            answer = await chain.ainvoke("What is my name?")  # waits out the budget
            assert answer.response_metadata["served_by"] == "offline"
            assert deadline.passed()
            started = time.monotonic()
            facts = await model_facts(chain, "My name is Ada.", "Nice to meet you.")
            summary = await summarise(chain, "", turns, max_chars=500)
            again = await chain.ainvoke("And my age?")
            elapsed = time.monotonic() - started

    assert facts == []
    assert summary == "User: My name is Ada.\nAssistant: Nice to meet you, Ada."  # extractive
    assert again.response_metadata["fallbacks"] == [
        {"model": chain.backends[0].name, "error": "deadline"}
    ]
    assert model.calls(MODEL) == 1  # only the first call reached the server
    assert elapsed < 1.0


async def test_a_remote_reply_gives_the_budget_back(model: OpenAIServer) -> None:
    async with _chain(model) as chain:
        with turn_deadline(1.0) as deadline:
            deadline.waited(0.6)  # an earlier call of the turn waited in vain
            reply = await chain.ainvoke("hello")  # answers at once
            assert deadline.remaining() == 1.0

    assert reply.response_metadata["served_by"] != "offline"


async def test_time_outside_model_calls_does_not_count(model: OpenAIServer) -> None:
    async with _chain(model) as chain:
        with turn_deadline(0.3) as deadline:
            await asyncio.sleep(0.5)  # a slow tool between two rounds
            assert not deadline.passed()
            reply = await chain.ainvoke("hello")

    assert reply.response_metadata["served_by"] != "offline"


def test_a_hair_of_budget_left_counts_as_spent() -> None:
    # An outer timer (the router's) cancels a call at the deadline, and the call measures
    # a hair less than it waited: the next call must not start with ~0 s to reach a model.
    with turn_deadline(2.0) as deadline:
        deadline.waited(2.0 - 0.001)
        assert deadline.passed()
        assert deadline.remaining() == 0.0
        deadline.answered()
        assert deadline.remaining() == 2.0
        deadline.waited(1.0)
        assert not deadline.passed()
        assert deadline.remaining() == pytest.approx(1.0)
