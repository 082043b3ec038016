"""Tools the API caller runs itself (OpenAI function calling): a call to one pauses the run.

The model sees a client tool's OpenAI spec next to the server's tools. Its calls to one
are given ids of the form ``call_<16 hex>_<thread id>`` (:func:`name_calls`), so that
the caller's next request, which carries only the results, names its thread. The run
waits with ``interrupt(client_request(calls))`` and goes on with
``Command(resume={"results": {call_id: text}})``; each result becomes a ``ToolMessage``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jsonschema import Draft202012Validator
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolCall, ToolMessage

from app.tools._text import cap, shorten

__all__ = [
    "KIND",
    "NO_CALL_OFFLINE",
    "ClientCall",
    "check_args",
    "client_names",
    "client_request",
    "forces_choice",
    "name_calls",
    "pending_client_calls",
    "result_messages",
    "thread_of_call",
]

KIND: Final = "client_tools"
"""``kind`` of the interrupt payload of a run that waits for the caller's tool results."""

NO_CALL_OFFLINE: Final = (
    "I could not call a tool: the model server is unavailable, and the offline answerer "
    "cannot make the tool call that tool_choice asks for."
)
"""The answer when ``tool_choice`` forces a call and only the offline answerer replied."""

_CALL_ID = re.compile(r"^call_[0-9a-f]{16}_(?P<thread>[A-Za-z0-9][A-Za-z0-9_.:-]{0,127})$")
_SCHEMA_MAPS: Final = ("properties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_SUB: Final = (
    "allOf",
    "anyOf",
    "oneOf",
    "prefixItems",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
)


@dataclass(frozen=True)
class ClientCall:
    """One call to a client tool, waiting for the caller's result."""

    id: str
    name: str
    args: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return the call as a JSON-ready dict."""
        return {"id": self.id, "name": self.name, "args": self.args}


def client_names(specs: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Return the function names of OpenAI tool specs."""
    return frozenset(str(spec["function"]["name"]) for spec in specs)


def thread_of_call(call_id: str) -> str | None:
    """Return the thread id a client tool call's id names (None for any other id)."""
    found = _CALL_ID.fullmatch(call_id)
    return found["thread"] if found else None


def name_calls(reply: AIMessage, names: Collection[str], thread_id: str) -> AIMessage:
    """Give the reply's calls to the client tools ``names`` ids that name ``thread_id``.

    The model's own ids may repeat across calls or turns; these are unique.
    """
    if not any(call["name"] in names for call in reply.tool_calls):
        return reply
    calls = [
        {**call, "id": f"call_{secrets.token_hex(8)}_{thread_id}"}
        if call["name"] in names
        else call
        for call in reply.tool_calls
    ]
    extra = {k: v for k, v in reply.additional_kwargs.items() if k != "tool_calls"}
    return reply.model_copy(update={"tool_calls": calls, "additional_kwargs": extra})


def forces_choice(messages: Sequence[AnyMessage], names: Collection[str]) -> bool:
    """Whether the next model call is the first one of a request.

    That is after the user's message, or after the caller's own tool results; after
    the server's tools ran, the model chooses freely (``tool_choice`` does not hold).
    """
    if not messages:
        return True
    if isinstance(messages[-1], HumanMessage):
        return True
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            return False
        if message.name in names:
            return True
    return False


def _loose(schema: Any) -> Any:
    """The schema without regular expressions, which could take unbounded time to match.

    ``patternProperties`` goes with the keywords that depend on it, so that no property
    is refused for want of its pattern.
    """
    if isinstance(schema, list):
        return [_loose(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    drop = {"pattern", "patternProperties"}
    if "patternProperties" in schema:
        drop |= {"additionalProperties", "unevaluatedProperties"}
    for key, value in schema.items():
        if key in drop:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _loose(v) for k, v in value.items()}
        elif key in _SCHEMA_SUB:
            out[key] = _loose(value)
        else:
            out[key] = value
    return out


def check_args(schema: Mapping[str, Any] | None, args: Any) -> list[str]:
    """Check a call's arguments against a client tool's ``parameters`` schema.

    Patterns are not matched (the caller checks them); a schema that cannot be applied
    (an unresolvable ``$ref``) lets the arguments pass.

    Returns:
        Readable problems, ``"<JSON path>: <message>"``; empty when the arguments fit.
    """
    if not isinstance(args, dict):
        return ["$: the arguments must be a JSON object"]
    if not schema:
        return []
    try:
        validator = Draft202012Validator(_loose(dict(schema)))
        errors = sorted(validator.iter_errors(args), key=lambda error: error.json_path)
    except Exception:  # noqa: BLE001 - the caller's schema, checked when it was sent
        return []
    return [f"{error.json_path}: {shorten(error.message)}" for error in errors[:10]]


def client_request(calls: Sequence[ToolCall]) -> dict[str, Any]:
    """Build the interrupt payload for calls the caller must run."""
    return {
        "kind": KIND,
        "calls": [
            ClientCall(c.get("id") or "", c["name"], dict(c["args"])).as_dict() for c in calls
        ],
    }


def pending_client_calls(interrupts: Iterable[Any]) -> list[ClientCall]:
    """Return the calls waiting for the caller's results among a thread's open interrupts."""
    found: list[ClientCall] = []
    for pending in interrupts:
        value = getattr(pending, "value", None)
        if not isinstance(value, Mapping) or value.get("kind") != KIND:
            continue
        for call in value.get("calls", []):
            found.append(ClientCall(call["id"], call["name"], dict(call["args"])))
    return found


def result_messages(calls: Sequence[ToolCall], resume: Any, max_chars: int) -> list[ToolMessage]:
    """The caller's results (the resume value) as the calls' tool messages.

    Args:
        calls: The calls the run waited on.
        resume: ``{"results": {call_id: text}}``; a call without a result gets an error.
        max_chars: Longest result kept; longer ones are cut with a notice.
    """
    results = resume.get("results", {}) if isinstance(resume, Mapping) else {}
    messages = []
    for call in calls:
        call_id = call.get("id") or ""
        text = results.get(call_id)
        ok = isinstance(text, str)
        messages.append(
            ToolMessage(
                content=cap(text, max_chars)
                if isinstance(text, str)
                else "Error: the caller sent no result.",
                tool_call_id=call_id,
                name=call["name"],
                status="success" if ok else "error",
                response_metadata={"outcome": "ok" if ok else "error", "client": True},
            )
        )
    return messages
