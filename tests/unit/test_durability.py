"""checkpoint.durability: by default (``sync``) a turn's state is written after every step,
so the user's message is saved before the model is called."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from app.context import Context
from app.conversations import thread_key
from app.graphs.agent import compile_agent
from app.resources import Resources, use_resources
from app.turns import ask
from tests.fakes import ScriptedChatModel


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


async def test_exit_writes_one_checkpoint_per_turn_and_sync_one_per_step(
    resources: Resources,
) -> None:
    exit_count, exit_answer = await _turn(resources, "exit")
    sync_count, sync_answer = await _turn(resources, "sync")
    async_count, async_answer = await _turn(resources, "async")
    assert exit_count == 1
    assert sync_count == async_count > 5  # the input, then one per step: guard, memory, ...
    assert exit_answer == sync_answer == async_answer


class PeekingModel(ScriptedChatModel):
    """Notes, at each call, the messages the thread's last checkpoint holds."""

    saver: Any = None
    config: Any = None
    saved: list[list[str]] = Field(default_factory=list)

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        found = self.saver.get_tuple(self.config)
        values = found.checkpoint["channel_values"] if found else {}
        self.saved.append([m.text for m in values.get("messages", [])])
        return super()._generate(messages, stop, run_manager, **kw)


async def test_by_default_the_question_is_saved_before_the_model_is_called(
    resources: Resources,
) -> None:
    assert resources.settings.checkpoint.durability == "sync"  # the default
    ctx, saver = Context(), InMemorySaver()
    config: Any = {"configurable": {"thread_id": thread_key(ctx, "t")}}
    model = PeekingModel(replies=[AIMessage("An answer.")], saver=saver, config=config)
    with use_resources(replace(resources, chat_model=model)):
        answer = await ask(
            compile_agent(saver), "Is my question kept?", context=ctx, thread_id="t", max_chars=99
        )
    assert answer.answer == "An answer."
    assert model.saved and all("Is my question kept?" in saved for saved in model.saved)
