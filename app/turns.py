"""One conversational turn through the compiled agent, with the stable answer shape."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from app.answer import Answer, QuestionError, Token, new_thread_id
from app.context import Context
from app.conversations import run_durability, thread_config
from app.llm.deadline import turn_deadline
from app.llm.usage import UsageLedger, metered
from app.nodes.guard import early_query
from app.resources import aget_resources
from app.safety.reply import TokenGuard
from app.state import AgentState, InputState
from app.tools.approval import pending_approvals
from app.tools.client import pending_client_calls

__all__ = [
    "Answer",
    "QuestionError",
    "Token",
    "ask",
    "new_thread_id",
    "resume",
    "stream_ask",
    "stream_resume",
    "turn_usage",
    "waiting",
]

# The output key under which LangGraph reports the interrupts a run ended on (documented
# for ``invoke`` results and ``updates`` stream events).
INTERRUPT = "__interrupt__"

_SURROGATE = re.compile("[\ud800-\udfff]")


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
        thread_id: The caller's thread id (scoped to the caller by
            :func:`~app.conversations.thread_key`).
        max_chars: The longest question accepted.

    Raises:
        QuestionError: The question is empty, too long or not valid text; nothing is
            written.
    """
    config = _config(context, thread_id, question, max_chars)
    await _prefetch(question)
    with turn_deadline(await _model_budget()), metered() as ledger:
        state = await agent.ainvoke(
            InputState(messages=[HumanMessage(content=question)]),
            config,
            context=context,
            durability=await run_durability(),
        )
    return _counted(_finish(state, state.get(INTERRUPT, ()), thread_id), ledger)


async def resume(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    decision: Any,
    *,
    context: Context,
    thread_id: str,
) -> Answer:
    """Continue a paused run, in this process or any later one.

    Args:
        agent: The agent compiled with the checkpointer that holds the thread.
        decision: For a run waiting for approval, ``"approve"`` or ``"deny"`` for every
            waiting call, or ``{call_id: "approve" | "deny"}``; calls it does not approve
            are denied. For a run waiting on client tools, ``{"results": {call_id: text}}``.
        context: The thread owner's identity.
        thread_id: The caller's thread id.

    Raises:
        QuestionError: Nothing on the thread is waiting.
    """
    config = await _paused(agent, context, thread_id)
    with turn_deadline(await _model_budget()), metered() as ledger:
        state = await agent.ainvoke(
            Command(resume=decision), config, context=context, durability=await run_durability()
        )
    return _counted(_finish(state, state.get(INTERRUPT, ()), thread_id), ledger)


async def waiting(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    *,
    context: Context,
    thread_id: str,
) -> list[dict[str, Any]]:
    """Return the tool calls a thread waits on for approval (empty when none)."""
    snapshot = await agent.aget_state(thread_config(context, thread_id))
    return [a.as_dict() for a in pending_approvals(snapshot.interrupts)]


def _finish(state: dict[str, Any], interrupts: Iterable[Any], thread_id: str) -> Answer:
    """The turn's answer, or the calls it waits on when it paused (approval, client tools).

    Args:
        state: The graph's last values.
        interrupts: The interrupts the run ended on (LangGraph reports them with the
            output, so the checkpoint need not be read back).
        thread_id: The caller's thread id.
    """
    interrupts = list(interrupts)
    waiting = pending_approvals(interrupts)
    calls = pending_client_calls(interrupts)
    if calls:
        last = state["messages"][-1]
        return Answer(
            answer=last.text if isinstance(last, AIMessage) else "",
            thread_id=thread_id,
            client_calls=[c.as_dict() for c in calls],
            usage=turn_usage(state.get("messages", [])),
        )
    if not waiting:
        return _answer(state, thread_id)
    tools = ", ".join(sorted({a.tool for a in waiting}))
    return Answer(
        answer=f"Waiting for your approval to run: {tools}.",
        thread_id=thread_id,
        approvals=[a.as_dict() for a in waiting],
        usage=turn_usage(state.get("messages", [])),
    )


def _counted(answer: Answer, ledger: UsageLedger) -> Answer:
    """The answer with the usage of every model call of its turn, when any was counted.

    Models that record no calls (test doubles) leave the usage their replies reported.
    """
    if ledger.calls:
        answer.usage = ledger.totals()
        answer.model_calls = [dict(call) for call in ledger.calls]
    return answer


def turn_usage(messages: list[Any]) -> dict[str, int]:
    """Sum the token usage the models reported for the messages after the last question."""
    prompt = completion = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        usage = getattr(message, "usage_metadata", None) or {}
        prompt += int(usage.get("input_tokens", 0))
        completion += int(usage.get("output_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _config(context: Context, thread_id: str, question: str, max_chars: int) -> RunnableConfig:
    if not question.strip():
        raise QuestionError("the question is empty")
    if len(question) > max_chars:
        raise QuestionError(f"the question is longer than {max_chars} characters")
    if _SURROGATE.search(question):  # argv's bytes that are not UTF-8 arrive as surrogates
        raise QuestionError(
            "the question is not valid text: it holds bytes that are not UTF-8 or a lone "
            "surrogate (U+D800 to U+DFFF)"
        )
    return thread_config(context, thread_id)


async def _model_budget() -> float:
    """How long a turn waits on remote models: ``llm.deadline_s``, default ``llm.timeout_s``.

    Every model call of the turn shares that one deadline (see :mod:`app.llm.deadline`).
    """
    llm = (await aget_resources()).settings.llm
    return llm.deadline_s or llm.timeout_s


async def _prefetch(question: str) -> None:
    """Start embedding the turn's retrieval query before the graph starts, if it is known.

    ``guard_input`` starts the same embedding (or finds this one in flight); starting it
    here overlaps it with loading the thread's checkpoint and the first graph steps too.
    """
    query = early_query(question)
    if query is not None:
        (await aget_resources()).retriever.prefetch(query)


def _answer(state: dict[str, Any], thread_id: str) -> Answer:
    final = state["messages"][-1]
    return Answer(
        answer=final.text,
        citations=list(state.get("citations", [])),
        thread_id=thread_id,
        refused=bool(state.get("refused", False)),
        degraded=list(state.get("degraded", [])),
        cache=str(state.get("cache", "")),
        usage=turn_usage(state["messages"]),
    )


async def stream_ask(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    question: str,
    *,
    context: Context,
    thread_id: str,
    max_chars: int,
    callbacks: list[BaseCallbackHandler] | None = None,
) -> AsyncIterator[Token | Answer]:
    """Run one turn like :func:`ask`, yielding the model's tokens as they arrive.

    Tokens come from the graph's ``messages`` stream, from the ``respond`` node only.

    Args:
        agent: The agent compiled with a checkpointer.
        question: The user's message.
        context: Identity, knobs and decoding parameters for the run.
        thread_id: The caller's thread id.
        max_chars: The longest question accepted.
        callbacks: Further LangChain callback handlers for the run (timing, tracing).

    Yields:
        :class:`Token` pieces, then exactly one :class:`Answer`.

    Raises:
        QuestionError: The question is empty, too long or not valid text; nothing is
            written.
    """
    config = _config(context, thread_id, question, max_chars)
    if callbacks:
        config["callbacks"] = callbacks
    await _prefetch(question)
    turn = InputState(messages=[HumanMessage(content=question)])
    with turn_deadline(await _model_budget()), metered() as ledger:
        async for event in _stream(agent, turn, config, context, thread_id):
            yield _counted(event, ledger) if isinstance(event, Answer) else event


async def stream_resume(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    decision: Any,
    *,
    context: Context,
    thread_id: str,
) -> AsyncIterator[Token | Answer]:
    """Continue a paused run like :func:`resume`, yielding tokens like :func:`stream_ask`.

    Raises:
        QuestionError: Nothing on the thread is waiting.
    """
    config = await _paused(agent, context, thread_id)
    with turn_deadline(await _model_budget()), metered() as ledger:
        async for event in _stream(agent, Command(resume=decision), config, context, thread_id):
            yield _counted(event, ledger) if isinstance(event, Answer) else event


async def _stream(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    graph_input: InputState | Command[Any],
    config: RunnableConfig,
    context: Context,
    thread_id: str,
) -> AsyncIterator[Token | Answer]:
    state: dict[str, Any] = {}
    interrupts: list[Any] = []
    # Tokens pass the output guard's checks as they stream, never raw model text.
    limits = (await aget_resources()).settings.limits
    guard = TokenGuard(prompt=context.system_prompt, max_chars=limits.max_output_chars)
    async for mode, payload in agent.astream(
        graph_input,
        config,
        context=context,
        # "updates" only for the interrupts the run ends on; the values say the rest.
        stream_mode=["messages", "values", "updates"],
        durability=await run_durability(),
    ):
        if mode == "values":
            state = cast(dict[str, Any], payload)
            continue
        if mode == "updates":
            interrupts.extend(cast(dict[str, Any], payload).get(INTERRUPT, ()))
            continue
        message, meta = cast(tuple[Any, dict[str, Any]], payload)
        if meta.get("langgraph_node") != "respond" or not isinstance(message, AIMessageChunk):
            continue
        if message.response_metadata.get("stream_reset"):
            yield guard.restart(message.id or "")
        elif message.text:
            for token in guard.feed(message.id or "", message.text):
                yield token
    for token in guard.close():
        yield token
    yield _finish(state, interrupts, thread_id)


async def _paused(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    context: Context,
    thread_id: str,
) -> RunnableConfig:
    """The thread's config, once its run is known to wait (approval or client tool results).

    Raises:
        QuestionError: Nothing on the thread is waiting.
    """
    config = thread_config(context, thread_id)
    snapshot = await agent.aget_state(config)
    if not (pending_approvals(snapshot.interrupts) or pending_client_calls(snapshot.interrupts)):
        raise QuestionError(f"thread {thread_id!r} has no tool call waiting")
    return config
