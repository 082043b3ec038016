"""Closing a conversation whose last run died mid-turn, before its next message runs.

With ``checkpoint.durability`` ``sync`` (the default), a run writes a checkpoint after
every step, so a process killed mid-turn leaves the thread at the step it reached: the
user's message is kept, the graph still has steps to run, and an assistant message may
ask for tool calls that never got their results (a model provider refuses such a
history). LangGraph drops the unrun steps when new input comes; this module closes the
turn in the history itself: each unanswered tool call gets a "not run" result and the
turn an assistant note, written as the graph's last node, so the next message starts a
clean turn and the history says what happened.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

__all__ = ["INTERRUPTED_NOTE", "NOT_RUN", "close_interrupted", "interrupted"]

INTERRUPTED_NOTE = (
    "(This turn was interrupted: the server stopped before it was answered. "
    "Ask again to get an answer.)"
)
"""The assistant message that closes an interrupted turn."""
NOT_RUN = "Not run: the turn was interrupted before this tool ran."
"""The result given to a tool call the interrupted turn never ran."""
_LAST_NODE = "compress_memory"


def interrupted(snapshot: StateSnapshot) -> bool:
    """Whether a thread's last run died mid-turn: steps left, and no pause for approval."""
    return bool(snapshot.next) and not snapshot.interrupts


def _closing(messages: list[BaseMessage]) -> list[BaseMessage]:
    turn: list[BaseMessage] = []
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        turn.append(message)
    answered = {m.tool_call_id for m in turn if isinstance(m, ToolMessage)}
    results: list[BaseMessage] = [
        ToolMessage(content=NOT_RUN, tool_call_id=call["id"], name=call["name"])
        for message in reversed(turn)
        if isinstance(message, AIMessage)
        for call in message.tool_calls
        if call.get("id") and call["id"] not in answered
    ]
    return [*results, AIMessage(content=INTERRUPTED_NOTE)]


async def close_interrupted(
    agent: Any, config: RunnableConfig, snapshot: StateSnapshot | None = None
) -> bool:
    """Close the thread's last turn if its run died mid-turn; returns whether it did.

    Args:
        agent: The compiled agent, with the thread's checkpointer.
        config: The thread's config (``configurable.thread_id``).
        snapshot: The thread's state, if the caller has just read it.
    """
    if snapshot is None:
        snapshot = await agent.aget_state(config)
    if not interrupted(snapshot):
        return False
    closing = _closing(list((snapshot.values or {}).get("messages", [])))
    await agent.aupdate_state(config, {"messages": closing}, as_node=_LAST_NODE)
    return True
