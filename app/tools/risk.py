"""Risk classes of tools, and the outcomes a tool call can have."""

from __future__ import annotations

from typing import Final, Literal, cast, get_args

from langchain_core.tools import BaseTool

__all__ = ["Outcome", "Risk", "risk_of", "with_risk"]

Risk = Literal["read", "compute", "write"]
"""What a tool can do: read data, compute from its arguments, or change stored data."""

Outcome = Literal[
    "ok",
    "error",
    "timeout",
    "invalid_arguments",
    "unknown_tool",
    "denied",
    "rejected",
    "rate_limited",
    "stopped",
    "duplicate",
]
"""How a tool call ended; kept in the reply's ``response_metadata["outcome"]``."""

_RISKS: Final = frozenset(get_args(Risk))


def with_risk(tool: BaseTool, risk: Risk) -> BaseTool:
    """Give ``tool`` a risk class (kept in its metadata) and return it."""
    if risk not in _RISKS:
        raise ValueError(f"unknown risk class {risk!r}; use one of {sorted(_RISKS)}")
    tool.metadata = {**(tool.metadata or {}), "risk": risk}
    return tool


def risk_of(tool: BaseTool) -> Risk:
    """Return a tool's risk class; a tool without one counts as ``write``, the strictest."""
    risk = (tool.metadata or {}).get("risk")
    for known in get_args(Risk):
        if risk == known:
            return cast(Risk, known)
    return "write"
