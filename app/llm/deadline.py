"""One deadline shared by every model call of a turn.

A turn (one question, or one resumed run) gives remote models ``llm.deadline_s`` (default
``llm.timeout_s``) to answer. Every call of the turn (the router, the answer and each
tool round, memory extraction, the summary, their retries and fallbacks) draws on that
one budget: the time a call spends without a remote model answering it is taken from
it, and a call starts with only what is left. Once it is spent, the chain replies with
the offline answerer at once, and the work after the answer that needs a generative
model is skipped. A reply from a remote model gives the budget back in full, and time
spent outside model calls (running tools) does not count, so a slow but healthy model
or a slow tool never makes the turn give up on the model: only waiting on models that
do not answer is bounded. With a hung model server, a turn therefore ends within one
``deadline_s`` plus the offline answer.

The deadline travels in a context variable, so calls that LangGraph runs in tasks of
their own see the turn's deadline without each call site passing it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["MIN_CALL_S", "TurnDeadline", "current_deadline", "deadline_passed", "turn_deadline"]

# Less than this left is no time to reach a remote model: the budget counts as spent. It
# also absorbs clock skew between an outer timer that cancels a call at the deadline and
# the call's own measure of the time it waited, which is a hair shorter.
MIN_CALL_S = 0.05


class TurnDeadline:
    """How long the turn may still wait on remote models that do not answer.

    Attributes:
        budget_s: The whole budget, ``llm.deadline_s``.
        spent: Seconds spent in model calls since the last remote reply.
    """

    def __init__(self, budget_s: float) -> None:
        """Start with the whole budget."""
        self.budget_s = budget_s
        self.spent = 0.0

    def remaining(self) -> float:
        """Seconds a model call starting now may wait for a remote model (never negative)."""
        left = self.budget_s - self.spent
        return 0.0 if left < MIN_CALL_S else left

    def passed(self) -> bool:
        """Whether the budget is spent (less than :data:`MIN_CALL_S` left counts as spent)."""
        return self.remaining() == 0.0

    def waited(self, seconds: float) -> None:
        """Take ``seconds`` that a model call spent without a remote reply from the budget."""
        self.spent += max(0.0, seconds)

    def answered(self) -> None:
        """Record that a remote model answered: the whole budget is back."""
        self.spent = 0.0


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
    """Run a turn under one deadline for its model calls.

    Args:
        budget_s: How long the turn waits for remote models that do not answer.

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
