"""Runaway control: repeated calls, failed repairs and per-run budgets.

Everything is derived from the messages of the current run (the turn since the last user
message), so the checks hold after a restart from a checkpoint. Each check returns the
sentence that ends the run, or None.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolCall, ToolMessage

from app.llm.tokens import TokenCounter

__all__ = [
    "Budget",
    "call_signature",
    "check_budget",
    "current_run",
    "failed_repair",
    "repeated_call",
    "run_tokens",
]


def current_run(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """Return the messages after the last user message: this run's model and tool turns."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return list(messages[i + 1 :])
    return list(messages)


def call_signature(call: ToolCall) -> str:
    """Return a canonical text for a call: its tool and its arguments with sorted keys."""
    args = json.dumps(call.get("args", {}), sort_keys=True, ensure_ascii=False, default=str)
    return f"{call.get('name', '')}:{args}"


def _calls(run: Sequence[AnyMessage]) -> list[ToolCall]:
    return [c for m in run if isinstance(m, AIMessage) for c in m.tool_calls]


def repeated_call(run: Sequence[AnyMessage], limit: int) -> str | None:
    """Stop when one call (same tool, same arguments) has been asked for ``limit`` times.

    Args:
        run: This run's messages, ending with the AI message whose calls are pending.
        limit: ``tools.max_repeats``.
    """
    counts = Counter(call_signature(c) for c in _calls(run))
    for call in _calls(run[-1:]):
        if counts[call_signature(call)] >= limit:
            return (
                f"I stopped because the {call['name']} tool was asked {limit} times with the "
                "same arguments without getting anywhere."
            )
    return None


def failed_repair(
    run: Sequence[AnyMessage], pending: Sequence[ToolCall], invalid: set[str]
) -> str | None:
    """Stop when a tool's arguments are invalid again after their one repair attempt.

    Args:
        run: This run's messages before the pending calls were answered.
        pending: The calls about to be answered.
        invalid: Ids of the pending calls whose arguments fail validation.
    """
    failed_before = {
        m.name
        for m in run
        if isinstance(m, ToolMessage) and m.response_metadata.get("outcome") == "invalid_arguments"
    }
    for call in pending:
        if call.get("id") in invalid and call["name"] in failed_before:
            return (
                f"I stopped because the arguments for the {call['name']} tool were still "
                "invalid after one repair attempt."
            )
    return None


def run_tokens(run: Sequence[AnyMessage], counter: TokenCounter) -> int:
    """Tokens this run's model calls used: reported usage, else counted reply text."""
    total = 0
    for message in run:
        if not isinstance(message, AIMessage):
            continue
        if message.usage_metadata:
            total += int(message.usage_metadata.get("total_tokens", 0))
        else:
            calls = "".join(c["name"] + json.dumps(c["args"]) for c in message.tool_calls)
            total += counter.count(message.text + calls)
    return total


@dataclass(frozen=True)
class Budget:
    """Per-run limits (``limits.*``)."""

    max_tool_calls: int
    max_tokens: int
    max_seconds: float


def check_budget(
    run: Sequence[AnyMessage], budget: Budget, counter: TokenCounter, elapsed_s: float | None
) -> str | None:
    """Stop when running the pending calls would pass a budget.

    Args:
        run: This run's messages, ending with the AI message whose calls are pending.
        budget: The limits.
        counter: Counts reply tokens when a model reports no usage.
        elapsed_s: Seconds since the run started; None skips the wall-time check.
    """
    calls = len(_calls(run))
    if calls > budget.max_tool_calls:
        return (
            f"I stopped because this request reached its limit of {budget.max_tool_calls} "
            "tool calls."
        )
    tokens = run_tokens(run, counter)
    if tokens > budget.max_tokens:
        return (
            f"I stopped because this request used {tokens} tokens, over its budget of "
            f"{budget.max_tokens}."
        )
    if elapsed_s is not None and elapsed_s > budget.max_seconds:
        return (
            f"I stopped because this request ran for {elapsed_s:.1f} s, over its time "
            f"budget of {budget.max_seconds:g} s."
        )
    return None
