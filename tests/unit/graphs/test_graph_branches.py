"""No graph branch hops to a thread: LangGraph sends a plain branch function to its pool.

For a function that only reads a state field, the hop (a worker thread, two wake-ups,
the GIL handed over and back) cost more than the work: three times a turn.
"""

from __future__ import annotations

import inspect

import pytest
from langgraph.graph import StateGraph

from app.graphs import agent, indexer
from app.graphs.on_loop import on_loop


@pytest.mark.parametrize("builder", [agent.builder, indexer.builder], ids=["agent", "indexer"])
def test_every_branch_runs_on_the_event_loop(builder: StateGraph) -> None:  # type: ignore[type-arg]
    paths = [spec.path for specs in builder.branches.values() for spec in specs.values()]
    assert paths  # the walk reaches the branches
    for path in paths:
        # LangGraph wraps a plain function as (func, run it in the pool) and a coroutine
        # function as (None, the coroutine function).
        assert getattr(path, "func", "?") is None, path
        assert inspect.iscoroutinefunction(getattr(path, "afunc", None)), path


async def test_the_coroutine_twin_gives_the_branch_its_name_and_result() -> None:
    def pick(state: dict[str, int]) -> str:
        return "left" if state["n"] < 0 else "right"

    twin = on_loop(pick)
    assert twin.__name__ == "pick"
    assert [await twin({"n": -1}), await twin({"n": 1})] == ["left", "right"]
