"""One conversational turn through the compiled agent, with the stable answer shape."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from app.context import Context
from app.state import AgentState, Citation, InputState

__all__ = ["Answer", "QuestionError", "ask", "new_thread_id", "thread_key"]


class QuestionError(ValueError):
    """A question that cannot be asked (empty, too long)."""


@dataclass
class Answer:
    """The result of one turn: ``ragent ask --json`` prints exactly these keys."""

    answer: str
    citations: list[Citation] = field(default_factory=list)
    thread_id: str = ""
    refused: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the answer as a JSON-ready dict."""
        return asdict(self)


def new_thread_id() -> str:
    """Return a fresh thread id."""
    return uuid.uuid4().hex


def thread_key(ctx: Context, thread_id: str) -> str:
    """Return the checkpoint key of a thread, scoped to its owner.

    Two users who pick the same thread id get different threads, so no one can
    read or continue another user's conversation.
    """
    return f"{ctx.tenant_id}/{ctx.user_id}/{thread_id}"


async def ask(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    question: str,
    *,
    context: Context,
    thread_id: str,
    max_chars: int,
) -> Answer:
    """Run one turn on a thread and return the final answer with its citations.

    Args:
        agent: The agent compiled with a checkpointer.
        question: The user's message.
        context: Identity and knobs for the run.
        thread_id: The caller's thread id (scoped to the caller by :func:`thread_key`).
        max_chars: The longest question accepted.

    Raises:
        QuestionError: The question is empty or too long; nothing is written.
    """
    if not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > max_chars:
        raise QuestionError(f"the question is longer than {max_chars} characters")
    config: RunnableConfig = {"configurable": {"thread_id": thread_key(context, thread_id)}}
    state = await agent.ainvoke(
        InputState(messages=[HumanMessage(content=question)]), config, context=context
    )
    final = state["messages"][-1]
    return Answer(
        answer=final.text,
        citations=list(state.get("citations", [])),
        thread_id=thread_id,
        refused=bool(state.get("refused", False)),
    )
