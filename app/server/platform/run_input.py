"""What a run starts from: its ``input`` (new user messages) or ``command`` (a resume).

The thread's state decides what may start: new input while a tool approval waits is a
409 (``approval_pending``), a resume with nothing waiting a 409 (``nothing_to_resume``),
and a turn that a stopped run left open is closed first
(:func:`~app.server.runs.recovery.close_interrupted`), as on ``/v1``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.types import Command

from app.conversations import thread_config
from app.server.auth import Principal
from app.server.errors import ApiError
from app.server.platform.bodies import RunCreate
from app.server.platform.threads import identity
from app.server.runs.recovery import close_interrupted
from app.server.services import Services
from app.tools.approval import pending_approvals

__all__ = ["MAX_MESSAGES", "graph_input_of"]

MAX_MESSAGES = 20
"""New user messages one run may bring."""


def _question(services: Services, graph_input: dict[str, Any]) -> list[HumanMessage]:
    """The new user messages of a run's ``input``, checked."""
    raw = graph_input.get("messages")
    if set(graph_input) != {"messages"} or not isinstance(raw, list) or not raw:
        raise ApiError(
            400, "input: must be {'messages': [user messages]}", "invalid_request", param="input"
        )
    if len(raw) > MAX_MESSAGES:
        raise ApiError(400, f"input.messages: at most {MAX_MESSAGES}", "invalid_request")
    max_chars = services.settings.limits.max_input_chars
    out = []
    for item in raw:
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        kind = (item.get("type") or item.get("role")) if isinstance(item, dict) else None
        if kind not in {"human", "user"}:
            raise ApiError(400, "input.messages: only user messages start a run", "invalid_request")
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") == "text"
            )
        if not isinstance(content, str) or not content.strip():
            raise ApiError(400, "input.messages: the message is empty", "empty_question")
        if len(content) > max_chars:
            raise ApiError(
                400, f"input.messages: longer than {max_chars} characters", "question_too_long"
            )
        out.append(HumanMessage(content=content))
    return out


async def graph_input_of(
    services: Services, principal: Principal, thread_id: str, body: RunCreate
) -> tuple[Any, str]:
    """The graph's input for the run, and the thread's title (its last question).

    Raises:
        ApiError: 400 for input that is not user messages within the limits, 409 when
            the thread's state does not allow it (see the module's docstring).
    """
    config = thread_config(identity(principal), thread_id)
    snapshot = await services.agent.aget_state(config)
    pending = pending_approvals(snapshot.interrupts)
    if body.command is not None:
        if set(body.command) != {"resume"}:
            raise ApiError(
                400, "command: only {'resume': ...} is served", "invalid_request", param="command"
            )
        if not pending:
            raise ApiError(
                409, f"thread {thread_id!r} has no tool call waiting", "nothing_to_resume"
            )
        return Command(resume=body.command["resume"]), ""
    if body.input is None:
        raise ApiError(400, "input or command is required", "invalid_request", param="input")
    messages = _question(services, body.input)
    if pending:
        raise ApiError(
            409,
            f"thread {thread_id!r} waits for a decision on tool calls: run with "
            "command={'resume': 'approve' | 'deny'} first",
            "approval_pending",
        )
    if snapshot.interrupts:  # a /v1 turn waits for the results of the client's own tools
        raise ApiError(
            409,
            f"thread {thread_id!r} waits for tool results: send them on /v1/chat/completions",
            "tool_results_pending",
        )
    await close_interrupted(services.agent, config, snapshot)
    return {"messages": messages}, messages[-1].text
