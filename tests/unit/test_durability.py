"""checkpoint.durability: by default a turn's state is written once, when the turn ends."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.graphs.agent import compile_agent
from app.resources import Resources, use_resources
from app.service import ask, thread_key


async def _turn(resources: Resources, durability: str) -> tuple[int, str]:
    """Run one turn; return how many checkpoints it wrote, and its answer."""
    section = resources.settings.checkpoint.model_copy(update={"durability": durability})
    settings = resources.settings.model_copy(update={"checkpoint": section})
    ctx = Context()
    saver = InMemorySaver()
    with use_resources(replace(resources, settings=settings)):
        answer = await ask(
            compile_agent(saver),
            "How often does SQLite checkpoint the WAL?",
            context=ctx,
            thread_id="t",
            max_chars=1000,
        )
        config: Any = {"configurable": {"thread_id": thread_key(ctx, "t")}}
        later = compile_agent(saver)  # as a later process would: from the checkpoint alone
        history = [s async for s in later.aget_state_history(config)]
        state = await later.aget_state(config)
    assert state.values["messages"][-1].text == answer.answer
    return len(history), answer.answer


async def test_exit_writes_one_checkpoint_per_turn_and_async_one_per_step(
    resources: Resources,
) -> None:
    assert resources.settings.checkpoint.durability == "exit"  # the default
    exit_count, exit_answer = await _turn(resources, "exit")
    async_count, async_answer = await _turn(resources, "async")
    assert exit_count == 1
    assert async_count > 5  # the input, then one per step: guard, memory, route, ...
    assert exit_answer == async_answer
