"""OpenAI function calling on ``/v1/chat/completions``: a request's tools and tool results.

The rule for ``tools``: the name of one of the server's enabled tools selects that tool
(its definition is the server's own; naming some restricts the run to those), the name
of a server tool that is not enabled is refused, and any other name is a client tool,
offered to the model next to the server's tools and run by the caller. A model's call
to a client tool pauses the run and comes back as ``tool_calls``; the caller's next
request ends with one ``tool`` message per call and continues the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from langgraph.graph.state import CompiledStateGraph

from app.context import Context
from app.conversations import thread_config
from app.server.errors import ApiError
from app.server.schemas import ChatRequest
from app.state import AgentState, InputState
from app.tools.approval import pending_approvals
from app.tools.catalog import ALL_TOOLS
from app.tools.client import pending_client_calls, thread_of_call

__all__ = [
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_TOOLS_BYTES",
    "Offer",
    "ToolResults",
    "check_results",
    "offer",
    "tool_results",
]

MAX_SCHEMA_BYTES: Final = 16_384
"""Longest ``parameters`` schema of one client tool, as compact JSON."""
MAX_TOOLS_BYTES: Final = 65_536
"""Longest schemas and descriptions of a request's client tools together."""
MAX_SCHEMA_DEPTH: Final = 32
"""Deepest nesting of objects and arrays in a ``parameters`` schema."""


@dataclass(frozen=True)
class Offer:
    """The tools a request offers the model (the ``Context`` fields of the same names)."""

    tools: list[str] | None
    """Server tools: None for every enabled one."""
    client_tools: list[dict[str, Any]] = field(default_factory=list)
    """The caller's tools, as OpenAI specs."""
    tool_choice: str | None = None
    """``"required"``, a tool's name, or None (``"auto"``)."""


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _client_spec(index: int, function: Any) -> tuple[dict[str, Any], int]:
    """The OpenAI spec of a client tool and its size, once its schema is checked.

    Raises:
        ApiError: 400 for a schema too large, too deep or not a JSON Schema.
    """
    param = f"tools[{index}].function.parameters"
    spec: dict[str, Any] = {"name": function.name}
    if function.description is not None:
        spec["description"] = function.description
    size = len(function.description or "")
    if function.parameters is not None:
        schema = function.parameters
        if _depth(schema) > MAX_SCHEMA_DEPTH:
            raise ApiError(
                400,
                f"{param}: nested deeper than {MAX_SCHEMA_DEPTH} levels",
                "invalid_tool_schema",
                param=param,
            )
        schema_bytes = len(json.dumps(schema, separators=(",", ":")))
        if schema_bytes > MAX_SCHEMA_BYTES:
            raise ApiError(
                400,
                f"{param}: the schema is {schema_bytes} bytes, above {MAX_SCHEMA_BYTES}",
                "tool_schema_too_large",
                param=param,
            )
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ApiError(
                400, f"{param}: not a JSON Schema: {exc.message}", "invalid_tool_schema",
                param=param,
            ) from None  # fmt: skip
        spec["parameters"] = schema
        size += schema_bytes
    if function.strict is not None:
        spec["strict"] = function.strict
    return {"type": "function", "function": spec}, size


def offer(body: ChatRequest, enabled: tuple[str, ...]) -> Offer:
    """Split a request's ``tools`` into server and client tools, and read ``tool_choice``.

    Args:
        body: The request.
        enabled: The names of the server's enabled tools.

    Raises:
        ApiError: 400 for a repeated name, a server tool that is not enabled, a client
            tool whose schema is too large or invalid, client tools above
            ``MAX_TOOLS_BYTES`` together, or a ``tool_choice`` naming no offered tool.
    """
    if body.tool_choice == "none":
        return Offer(tools=[])
    reserved = {tool.name for tool in ALL_TOOLS}
    server: list[str] = []
    client: list[dict[str, Any]] = []
    total = 0
    seen: set[str] = set()
    for index, tool in enumerate(body.tools or []):
        name, param = tool.function.name, f"tools[{index}].function.name"
        if name in seen:
            raise ApiError(400, f"tools: {name!r} is listed twice", "duplicate_tool", param=param)
        seen.add(name)
        if name in enabled:
            server.append(name)
            continue
        if name in reserved:
            offered = ", ".join(enabled) or "none"
            raise ApiError(
                400,
                f"tools: {name!r} is a server tool that this server does not offer (it offers:"
                f" {offered}); a client tool may not take its name",
                "unknown_tool",
                param=param,
            )
        spec, size = _client_spec(index, tool.function)
        total += size
        if total > MAX_TOOLS_BYTES:
            raise ApiError(
                400,
                f"tools: the client tools' schemas and descriptions pass {MAX_TOOLS_BYTES} bytes",
                "tools_too_large",
                param="tools",
            )
        client.append(spec)
    choice = body.tool_choice
    if choice is None or choice == "auto":
        return Offer(server or None, client)
    if choice == "required":
        return Offer(server or None, client, "required")
    name = choice.function.name
    if name not in (server or enabled) and name not in {s["function"]["name"] for s in client}:
        raise ApiError(
            400,
            f"tool_choice: {name!r} is not one of the tools offered",
            "unknown_tool",
            param="tool_choice.function.name",
        )
    return Offer(server or None, client, name)


@dataclass(frozen=True)
class ToolResults:
    """The results of client tool calls that end a request's messages."""

    thread_id: str
    """The thread whose run called the tools (named by the call ids)."""
    results: dict[str, str]
    """Each call's result, by call id."""
    params: dict[str, str]
    """The request field of each call's message, by call id, for errors."""


def tool_results(body: ChatRequest, max_chars: int) -> ToolResults | None:
    """Read the ``tool`` messages that end the request (None when it ends otherwise).

    Raises:
        ApiError: 400 for a message without ``tool_call_id``, an id that names no
            client tool call of this server, ids of two conversations, a result sent
            twice or a ``conversation_id`` other than the calls'; 413 for a result
            longer than ``max_chars``.
    """
    start = len(body.messages)
    while start > 0 and body.messages[start - 1].role == "tool":
        start -= 1
    if start == len(body.messages):
        return None
    thread_id = ""
    results: dict[str, str] = {}
    params: dict[str, str] = {}
    for index in range(start, len(body.messages)):
        message, param = body.messages[index], f"messages[{index}]"
        call_id = message.tool_call_id
        if not call_id:
            raise ApiError(
                400, f"{param}: a tool message needs tool_call_id", "missing_tool_call_id",
                param=f"{param}.tool_call_id",
            )  # fmt: skip
        thread = thread_of_call(call_id)
        if thread is None or (thread_id and thread != thread_id):
            raise _unknown(call_id, f"{param}.tool_call_id")
        thread_id = thread
        if call_id in results:
            raise ApiError(
                400, f"{param}: a second result for tool call {call_id!r}",
                "duplicate_tool_result", param=f"{param}.tool_call_id",
            )  # fmt: skip
        text = message.text()
        if len(text) > max_chars:
            raise ApiError(
                400, f"{param}: the tool result is longer than {max_chars} characters",
                "context_length_exceeded", param=f"{param}.content",
            )  # fmt: skip
        results[call_id], params[call_id] = text, f"{param}.tool_call_id"
    if body.conversation_id is not None and body.conversation_id != thread_id:
        raise ApiError(
            400,
            "conversation_id: the tool calls answered belong to another conversation",
            "conversation_mismatch",
            param="conversation_id",
        )
    return ToolResults(thread_id, results, params)


def _unknown(call_id: str, param: str) -> ApiError:
    return ApiError(
        400,
        f"{param}: no tool call {call_id!r} of yours waits for a result",
        "unknown_tool_call",
        param=param,
    )


async def check_results(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    context: Context,
    answer: ToolResults,
) -> dict[str, Any]:
    """Check that the caller's thread waits on exactly these calls; return the resume value.

    The thread is looked up under the caller's own identity, so another user's call id
    names a thread of the caller that does not exist.

    Raises:
        ApiError: 400 for an unknown call or a call without a result; 409 when the run
            does not wait for tool results (already answered, or waiting for approval).
    """
    snapshot = await agent.aget_state(thread_config(context, answer.thread_id))
    first = next(iter(answer.params))
    if not snapshot.values:
        raise _unknown(first, answer.params[first])
    calls = pending_client_calls(snapshot.interrupts)
    if not calls:
        if pending_approvals(snapshot.interrupts):
            raise ApiError(
                409,
                f"conversation {answer.thread_id!r} waits for approval of server tool calls: "
                f"POST /v1/threads/{answer.thread_id}/resume",
                "approval_pending",
            )
        raise ApiError(
            409,
            f"conversation {answer.thread_id!r} does not wait for tool results (they were "
            "sent already, or the run ended)",
            "nothing_to_resume",
        )
    waiting = {call.id for call in calls}
    for call_id, param in answer.params.items():
        if call_id not in waiting:
            raise _unknown(call_id, param)
    missing = sorted(waiting - set(answer.results))
    if missing:
        raise ApiError(
            400,
            f"messages: no result for tool call {missing[0]!r} (one tool message per call)",
            "missing_tool_results",
            param="messages",
        )
    return {"results": answer.results}
