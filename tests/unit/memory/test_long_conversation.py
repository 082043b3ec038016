"""A 200-turn conversation stays inside the history token budget and still recalls, at
turn 200, a fact given at turn 1: the fact has long left the window and the running
summary, and comes back from the long-term store by relevance."""

from __future__ import annotations

from dataclasses import replace

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.conversations import thread_key
from app.graphs.agent import compile_agent
from app.memory.store import open_store
from app.resources import Resources, use_resources
from app.turns import ask
from tests.fakes import HashEmbedder, RecallingChatModel

TURNS = 200
BUDGET = 600
FACT = "Remember that my locker code is 4512."
TOPICS = ["gardening", "sailing", "chess", "baking", "astronomy", "cycling", "origami"]
CTX = Context(tenant_id="t1", user_id="u1")


def filler(turn: int) -> str:
    topic = TOPICS[turn % len(TOPICS)]
    return (
        f"Turn {turn}: tell me something about {topic}, in particular how beginners in "
        f"{topic} usually get started and what they should avoid doing early on."
    )


def history_tokens(prompt: list, resources: Resources) -> int:
    """Tokens of the summary and the turns in one prompt (the part the budget governs)."""
    system = prompt[0]
    assert isinstance(system, SystemMessage)
    _, _, rest = system.text.partition("Summary of the earlier conversation:\n")
    summary = rest.split("\n\n")[0]
    return resources.counter.count(summary) + sum(
        resources.counter.count(m.text) for m in prompt[1:]
    )


async def test_two_hundred_turns_stay_in_budget_and_recall_turn_one(
    resources: Resources,
) -> None:
    settings = resources.settings.model_copy(deep=True)
    settings.limits.history_token_budget = BUDGET
    settings.memory.extraction = "explicit"
    settings.memory.summarizer = "extractive"
    model = RecallingChatModel()
    res = replace(resources, chat_model=model, settings=settings)
    with use_resources(res):
        async with open_store(settings, HashEmbedder()) as store:
            agent = compile_agent(InMemorySaver(), store)
            answers = []
            for turn in range(1, TURNS + 1):
                question = (
                    FACT
                    if turn == 1
                    else "What is my locker code?"
                    if turn == TURNS
                    else filler(turn)
                )
                answer = await ask(agent, question, context=CTX, thread_id="long", max_chars=8000)
                answers.append(answer.answer)

    assert len(model.calls) == TURNS  # one model call per turn
    used = [history_tokens(prompt, res) for prompt in model.calls]
    assert max(used) <= BUDGET, max(used)
    assert answers[-1] == "The user's locker code is 4512."

    last_prompt = model.calls[-1]
    shown = "\n".join(m.text for m in last_prompt[1:])
    summary = last_prompt[0].text.partition("Summary of the earlier conversation:\n")[2]
    assert "4512" not in shown and "4512" not in summary.split("\n\n")[0]
    assert "Summary of the earlier conversation" in last_prompt[0].text

    snapshot = await agent.aget_state({"configurable": {"thread_id": thread_key(CTX, "long")}})
    messages = snapshot.values["messages"]
    assert len(messages) == 2 * TURNS  # nothing lost: the checkpoint keeps every message
    assert messages[0] == HumanMessage(FACT, id=messages[0].id)
    assert snapshot.values["summarized_count"] > TURNS  # most of it is folded away
