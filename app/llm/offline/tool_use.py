"""Tool use of the offline answerer: which bound tools a question needs, and results as text.

The answerer calls ``calculator`` for arithmetic, ``convert_units`` for unit conversions,
``current_time`` for clock questions and ``create_note`` when asked in so many words to
save a note (see :mod:`app.text.intents`), each at most once per question, and restates
what the tools returned as plain sentences.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage

from app.text.intents import (
    asks_for_time,
    find_arithmetic,
    find_conversion,
    find_note_request,
    find_timezone,
)

__all__ = ["describe_tool_results", "make_call", "plan_tool_calls", "tool_name"]

# How a tool is named in a sentence, where its own name reads badly.
_READABLE = {"convert_units": "unit converter"}


def tool_name(message: ToolMessage, messages: Sequence[BaseMessage]) -> str:
    """Return the name of the tool that produced ``message``.

    Args:
        message: A tool result.
        messages: The conversation, searched for the call when the result has no name.

    Returns:
        The tool's name, or ``"tool"`` when nothing names it.
    """
    if message.name:
        return message.name
    for earlier in messages:
        if isinstance(earlier, AIMessage):
            for call in earlier.tool_calls:
                if call.get("id") == message.tool_call_id:
                    return call["name"]
    return "tool"


def _describe(name: str, message: ToolMessage) -> str:
    readable = _READABLE.get(name, name.replace("_", " "))
    # A call asked for again is answered with the earlier result, which is what it returned.
    result = " ".join(str(message.response_metadata.get("result", message.text)).split())
    if message.status == "error":
        return f"The {readable} tool failed: {result.rstrip('.') or 'no details'}."
    if not result:
        return f"The {readable} returned nothing."
    return f"The {readable} returned {result}{'' if result.endswith('.') else '.'}"


def describe_tool_results(messages: Sequence[BaseMessage]) -> str:
    """Restate the tool results that end a conversation, one sentence each.

    Args:
        messages: The conversation; its trailing run of tool messages is described.

    Returns:
        Sentences such as ``"The calculator returned 391."``, in the results' order.
    """
    first = 1 + max(
        (i for i, m in enumerate(messages) if not isinstance(m, ToolMessage)), default=-1
    )
    trailing = [m for m in messages[first:] if isinstance(m, ToolMessage)]
    return " ".join(_describe(tool_name(m, messages), m) for m in trailing)


def make_call(name: str, args: dict[str, Any]) -> ToolCall:
    """Build a tool call whose id derives from its name and arguments (deterministic)."""
    digest = hashlib.sha1((name + json.dumps(args, sort_keys=True)).encode()).hexdigest()
    return ToolCall(name=name, args=args, id=f"call_{digest[:12]}", type="tool_call")


def plan_tool_calls(
    question: str, tool_names: Sequence[str], after: Sequence[BaseMessage]
) -> list[ToolCall]:
    """Pick the tool calls a question needs, skipping tools already used for it.

    Args:
        question: The user's question.
        tool_names: The tools bound to the model.
        after: The messages since the question (earlier calls and their results).

    Returns:
        The calls to make now; empty when the question needs no (further) tool.
    """
    used = {tool_name(m, after) for m in after if isinstance(m, ToolMessage)}
    used |= {c["name"] for m in after if isinstance(m, AIMessage) for c in m.tool_calls}

    def wanted(name: str) -> bool:
        return name in tool_names and name not in used

    calls: list[ToolCall] = []
    conversion = find_conversion(question) if wanted("convert_units") else None
    if conversion is not None:
        value, from_unit, to_unit = conversion
        args = {"value": value, "from_unit": from_unit, "to_unit": to_unit}
        calls.append(make_call("convert_units", args))
    if wanted("calculator") and conversion is None:
        expression = find_arithmetic(question)
        if expression is not None:
            calls.append(make_call("calculator", {"expression": expression}))
    if wanted("current_time") and asks_for_time(question):
        zone = find_timezone(question) or "UTC"
        calls.append(make_call("current_time", {"timezone": zone}))
    note = find_note_request(question) if wanted("create_note") else None
    if note is not None:
        title, text = note
        calls.append(make_call("create_note", {"title": title, "text": text}))
    return calls
