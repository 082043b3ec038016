"""Branch functions that LangGraph calls on the event loop."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["on_loop"]

S = TypeVar("S")
R = TypeVar("R")


def on_loop(branch: Callable[[S], R]) -> Callable[[S], Awaitable[R]]:
    """The coroutine twin of a plain branch function, for ``add_conditional_edges``.

    LangGraph runs a plain function given as a branch in a thread pool on every call:
    three thread hops a turn for functions that only read a state field. A coroutine
    runs on the event loop. The plain function stays as it is, for its tests.

    Args:
        branch: A pure function of the state that names the next node.

    Returns:
        A coroutine function with the same name and result.
    """

    @functools.wraps(branch)
    async def run(state: S) -> R:
        return branch(state)

    return run
