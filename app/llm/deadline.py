"""One deadline shared by every model call of a turn.

A turn (one question, or one resumed run) gives remote models ``llm.deadline_s`` (default
``llm.timeout_s``) to answer. Every call of the turn (the router, the answer and each
tool round, memory extraction, the summary, their retries and fallbacks) waits only until
that deadline; after it, the chain replies with the offline answerer at once, and the
work after the answer that needs a generative model is skipped. Each reply from a remote
model moves the deadline to ``deadline_s`` after it, so a slow but healthy model is never
cut off: only waiting on models that do not answer is bounded. With a hung model server,
a turn therefore ends within one ``deadline_s`` plus the offline answer.

The deadline travels in a context variable, so calls that LangGraph runs in tasks of
their own see the turn's deadline without each call site passing it on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["TurnDeadline", "current_deadline", "deadline_passed", "turn_deadline"]


class TurnDeadline:
    """When the turn stops waiting on remote models (``time.monotonic()`` seconds).

    Attributes:
        budget_s: How long the turn waits for a remote model to answer.
        at: The deadline itself.
    """

    def __init__(self, budget_s: float) -> None:
        """Start the clock: the deadline is ``budget_s`` from now."""
        self.budget_s = budget_s
        self.at = time.monotonic() + budget_s

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self.at

    def answered(self) -> None:
        """Record that a remote model answered: the turn may wait ``budget_s`` again."""
        self.at = max(self.at, time.monotonic() + self.budget_s)


_CURRENT: ContextVar[TurnDeadline | None] = ContextVar("turn_deadline", default=None)


def current_deadline() -> TurnDeadline | None:
    """Return the running turn's deadline; None outside a turn (each call has its own)."""
    return _CURRENT.get()


def deadline_passed() -> bool:
    """Whether the running turn's deadline has passed (never outside a turn)."""
    deadline = _CURRENT.get()
    return deadline is not None and deadline.passed()


@contextmanager
def turn_deadline(budget_s: float) -> Iterator[TurnDeadline]:
    """Run a turn under one deadline, ``budget_s`` from now.

    Args:
        budget_s: How long the turn waits for a remote model to answer.

    Yields:
        The deadline, which every model call inside the block shares.
    """
    deadline = TurnDeadline(budget_s)
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        try:
            _CURRENT.reset(token)
        except ValueError:
            # A streamed turn closed from another task: that context never saw it set.
            _CURRENT.set(None)
