"""SQLite checkpoints with one thread hop per operation (app/memory/sqlite_saver.py)."""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from app.memory.sqlite_saver import ThreadedSqliteSaver, open_sqlite_saver


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(saver: Any, *, ask: bool = False) -> Any:
    def first(state: State) -> dict[str, Any]:
        return {"log": ["first"]}

    def second(state: State) -> dict[str, Any]:
        if ask:
            return {"log": [f"second:{interrupt('go on?')}"]}
        return {"log": ["second"]}

    builder = StateGraph(State)
    builder.add_node(first)
    builder.add_node(second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder.compile(checkpointer=saver)


def _config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


async def test_a_turn_makes_one_hop_per_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    async with open_sqlite_saver(tmp_path / "c.sqlite") as saver:
        real = saver._run

        async def counted(call: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(call.__name__)
            return await real(call, *args, **kwargs)

        monkeypatch.setattr(saver, "_run", counted)
        graph = _graph(saver)
        out = await graph.ainvoke({"log": []}, _config("t"), durability="exit")
    assert out == {"log": ["first", "second"]}
    # The read at the start and the checkpoint at the end; aiosqlite made ~13 hops.
    assert calls == ["get_tuple", "put"], calls


async def test_history_state_and_deletion_round_trip(tmp_path: Path) -> None:
    async with open_sqlite_saver(tmp_path / "c.sqlite") as saver:
        graph = _graph(saver)
        await graph.ainvoke({"log": []}, _config("t"))
        await graph.ainvoke({"log": ["again"]}, _config("t"))
        state = await graph.aget_state(_config("t"))
        assert state.values["log"] == ["first", "second", "again", "first", "second"]
        history = [s async for s in graph.aget_state_history(_config("t"))]
        assert len(history) >= 6
        assert history[0].config == state.config  # newest first
        two = [s async for s in graph.aget_state_history(_config("t"), limit=2)]
        assert [s.config for s in two] == [h.config for h in history[:2]]
        older = [s async for s in graph.aget_state_history(_config("t"), before=history[1].config)]
        assert [s.config for s in older] == [h.config for h in history[2:]]
        await saver.adelete_thread("t")
        assert await saver.aget_tuple(_config("t")) is None


async def test_an_interrupt_resumes_from_a_later_saver(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    async with open_sqlite_saver(path) as saver:
        waiting = await _graph(saver, ask=True).ainvoke({"log": []}, _config("t"))
    assert waiting["__interrupt__"][0].value == "go on?"
    async with open_sqlite_saver(path) as saver:  # as after a restart
        done = await _graph(saver, ask=True).ainvoke(Command(resume="yes"), _config("t"))
    assert done["log"] == ["first", "second:yes"]


async def test_the_database_is_the_one_langgraph_savers_read_and_write(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(path)) as before:
        await _graph(before).ainvoke({"log": []}, _config("old"))  # a database from before
    async with open_sqlite_saver(path) as saver:
        await _graph(saver).ainvoke({"log": ["more"]}, _config("old"))
        assert (await _graph(saver).aget_state(_config("old"))).values["log"] == [
            "first",
            "second",
            "more",
            "first",
            "second",
        ]
    with SqliteSaver.from_conn_string(str(path)) as reader:
        assert reader.get_tuple(_config("old")) is not None


async def test_commits_do_not_wait_for_fsync(tmp_path: Path) -> None:
    async with open_sqlite_saver(tmp_path / "c.sqlite") as saver:
        assert isinstance(saver, ThreadedSqliteSaver)
        journal = saver.conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = saver.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (journal, synchronous) == ("wal", 1)  # 1: NORMAL


async def test_closing_finishes_queued_writes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    async with open_sqlite_saver(path) as saver:
        await _graph(saver).ainvoke({"log": []}, _config("t"))
    with pytest.raises(sqlite3.ProgrammingError):
        saver.conn.execute("SELECT 1")  # closed
    with SqliteSaver.from_conn_string(str(path)) as reader:
        assert reader.get_tuple(_config("t")) is not None
