"""Every model call of a turn, counted: what the API reports as the turn's ``usage``.

A turn opens a ledger (:func:`metered`); each model call made inside it (the answer,
the tier router, memory extraction, the history summary, structured-output repairs)
adds one entry when the model replies, in the role the caller declared with
:func:`model_role` (``answer`` unless told otherwise). The fallback chain records the
calls a remote model served; the offline answerer records its own. Outside a ledger,
recording does nothing (``langgraph dev``, evals, the CLI's cheap paths).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = ["ModelCall", "Role", "UsageLedger", "metered", "model_role", "record_call"]

Role = Literal["answer", "router", "memory", "summary", "repair"]


class ModelCall(TypedDict):
    """One model call of a turn, as reported in ``usage.calls``."""

    role: Role
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass
class UsageLedger:
    """The model calls of one turn, in the order they replied."""

    calls: list[ModelCall] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Return the turn's ``prompt_tokens``, ``completion_tokens`` and ``total_tokens``."""
        prompt = sum(c["prompt_tokens"] for c in self.calls)
        completion = sum(c["completion_tokens"] for c in self.calls)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


_ledger: ContextVar[UsageLedger | None] = ContextVar("usage_ledger", default=None)
_role: ContextVar[Role] = ContextVar("model_role", default="answer")


@contextmanager
def metered() -> Iterator[UsageLedger]:
    """Count every model call made inside the block (a turn) in a fresh ledger."""
    token = _ledger.set(UsageLedger())
    try:
        ledger = _ledger.get()
        assert ledger is not None
        yield ledger
    finally:
        _ledger.reset(token)


@contextmanager
def model_role(role: Role) -> Iterator[None]:
    """Record the model calls made inside the block under ``role``."""
    token = _role.set(role)
    try:
        yield
    finally:
        _role.reset(token)


def record_call(model: str, usage: Mapping[str, Any] | None) -> None:
    """Add a model call that replied to the current turn's ledger, if there is one.

    Args:
        model: The model that replied (``model@base_url``, or the offline answerer's name);
            only the model's name is kept, never its server's address.
        usage: The reply's ``usage_metadata``; None counts zero tokens.
    """
    ledger = _ledger.get()
    if ledger is None:
        return
    name = model.split("@", 1)[0]
    prompt = int((usage or {}).get("input_tokens", 0) or 0)
    completion = int((usage or {}).get("output_tokens", 0) or 0)
    ledger.calls.append(
        ModelCall(
            role=_role.get(),
            model=name,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
        )
    )
