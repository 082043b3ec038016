"""A thread whose run stopped mid-turn is closed before its next message runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.conversations import thread_key
from app.graphs.agent import builder, compile_agent
from app.resources import Resources, use_resources
from app.server.runs.recovery import INTERRUPTED_NOTE, NOT_RUN, close_interrupted, interrupted
from app.state import InputState
from app.turns import ask
from tests.fakes import ScriptedChatModel

CTX = Context(tenant_id="t1", user_id="u1")
CALL = {"name": "calculator", "args": {"expression": "2**10"}, "id": "k1"}


def _config() -> Any:
    return {"configurable": {"thread_id": thread_key(CTX, "t")}, "recursion_limit": 50}


@pytest.mark.parametrize("stopped_before", ["execute_tools", "respond"])
async def test_the_next_message_closes_a_turn_a_dead_run_left_open(
    resources: Resources, stopped_before: str
) -> None:
    saver = InMemorySaver()
    model = ScriptedChatModel(replies=[AIMessage("", tool_calls=[CALL]), AIMessage("Done.")])
    with use_resources(replace(resources, chat_model=model)):
        # Under durability "sync", a process killed inside a step leaves the checkpoint
        # of the step before it, exactly as a breakpoint there does.
        dying = builder.compile(checkpointer=saver, interrupt_before=[stopped_before])
        await dying.ainvoke(
            InputState(messages=[HumanMessage("two to the tenth?")]),
            _config(),
            context=CTX,
            durability="sync",
        )
        agent = compile_agent(saver)
        snapshot = await agent.aget_state(_config())
        assert interrupted(snapshot)
        assert snapshot.values["messages"][-1].text == (
            "" if stopped_before == "execute_tools" else "two to the tenth?"
        )

        assert await close_interrupted(agent, _config())
        closed = await agent.aget_state(_config())
        assert not closed.next and not interrupted(closed)
        assert not await close_interrupted(agent, _config())  # nothing left to close
        messages = closed.values["messages"]
        assert messages[0].text == "two to the tenth?"  # the user's message is kept
        assert messages[-1].text == INTERRUPTED_NOTE
        if stopped_before == "execute_tools":  # the call that never ran gets a result
            result = messages[-2]
            assert isinstance(result, ToolMessage)
            assert (result.tool_call_id, result.text) == ("k1", NOT_RUN)

        model.calls.clear()
        answer = await ask(agent, "and then?", context=CTX, thread_id="t", max_chars=1000)
    assert answer.answer == "Done."
    sent = model.calls[0]
    assert [type(m).__name__ for m in sent[-3:]][-1] == "HumanMessage"
    # Every tool call the model is shown has its result.
    calls = {c["id"] for m in sent if isinstance(m, AIMessage) for c in m.tool_calls}
    results = {m.tool_call_id for m in sent if isinstance(m, ToolMessage)}
    assert calls <= results


async def test_a_turn_that_ended_or_waits_is_left_alone(resources: Resources) -> None:
    saver = InMemorySaver()
    agent = compile_agent(saver)
    await ask(agent, "hello", context=CTX, thread_id="t", max_chars=1000)
    before = await agent.aget_state(_config())
    assert not await close_interrupted(agent, _config())
    after = await agent.aget_state(_config())
    assert after.values["messages"] == before.values["messages"]
