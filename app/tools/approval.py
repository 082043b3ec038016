"""Approval of tool calls: the interrupt payload, and reading the human's decision.

A run that needs approval pauses with ``interrupt(request)``; the payload lives in the
checkpoint, so any process can show it and resume the run with
``Command(resume=decision)``. A decision is ``"approve"`` or ``"deny"`` for every call,
``True``/``False``, or ``{call_id: "approve" | "deny"}``. Anything else, and any call the
decision does not name, counts as denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.messages import ToolCall

__all__ = ["KIND", "Approval", "approval_request", "parse_decisions", "pending_approvals"]

KIND: Final = "tool_approval"
"""``kind`` of every approval interrupt's payload."""

_YES: Final = frozenset({"approve", "approved", "allow", "yes", "y"})


@dataclass(frozen=True)
class Approval:
    """One tool call waiting for the user's decision."""

    id: str
    tool: str
    args: dict[str, Any]
    risk: str

    def as_dict(self) -> dict[str, Any]:
        """Return the request as a JSON-ready dict."""
        return {"id": self.id, "tool": self.tool, "args": self.args, "risk": self.risk}


def approval_request(calls: Sequence[ToolCall], risks: Mapping[str, str]) -> dict[str, Any]:
    """Build the interrupt payload for calls that need approval."""
    return {
        "kind": KIND,
        "calls": [
            Approval(
                c.get("id") or "", c["name"], dict(c["args"]), risks.get(c["name"], "write")
            ).as_dict()
            for c in calls
        ],
    }


def _yes(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in _YES


def parse_decisions(decision: Any, calls: Sequence[ToolCall]) -> dict[str, bool]:
    """Read the resume value: which of ``calls`` were approved, by call id."""
    ids = [c.get("id") or "" for c in calls]
    if isinstance(decision, Mapping):
        return {i: _yes(decision.get(i)) for i in ids}
    return dict.fromkeys(ids, _yes(decision))


def pending_approvals(interrupts: Iterable[Any]) -> list[Approval]:
    """Return the tool calls waiting for approval among a thread's open interrupts."""
    found: list[Approval] = []
    for pending in interrupts:
        value = getattr(pending, "value", None)
        if not isinstance(value, Mapping) or value.get("kind") != KIND:
            continue
        for call in value.get("calls", []):
            found.append(Approval(call["id"], call["tool"], dict(call["args"]), call["risk"]))
    return found
