"""Retention on real SQLite and real Redis: old checkpoints pruned, idle threads deleted.

A tiny graph per test (a turn appends the question and an answer; ``approve`` waits on
an interrupt) runs on the real saver; :func:`app.memory.retention.sweep` then prunes it.
"""

from __future__ import annotations

import operator
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from blockbuster import blockbuster_ctx
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from app.config.memory import RetentionSettings
from app.memory.retention import cut_off_id, sweep
from app.memory.sqlite_saver import open_sqlite_saver
from tests.integration.conftest import BACKENDS, REDISVL_ASYNC_FACTORY
from tests.servers import redis_server

pytestmark = pytest.mark.integration

KEEP = 4


class State(TypedDict):
    said: Annotated[list[str], operator.add]
    question: str


async def answer(state: State) -> dict[str, Any]:
    return {"said": [state["question"], f"answer {len(state['said']) // 2 + 1}"]}


async def approve(state: State) -> dict[str, Any]:
    decision = interrupt({"tool": "create_note"})
    return {"said": [f"decided {decision}"]}


def compiled(saver: BaseCheckpointSaver[str], *, approval: bool = False) -> Any:
    builder = StateGraph(State)
    builder.add_node(answer)
    builder.add_edge(START, "answer")
    if approval:
        builder.add_node(approve)
        builder.add_edge("answer", "approve")
        builder.add_edge("approve", END)
    else:
        builder.add_edge("answer", END)
    return builder.compile(checkpointer=saver)


def config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture(params=BACKENDS)
async def saver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    if request.param == "sqlite":
        async with open_sqlite_saver(tmp_path / "checkpoints.sqlite") as sqlite:
            yield sqlite
        return
    from langgraph.checkpoint.redis.aio import AsyncRedisSaver

    url = request.getfixturevalue("redis_url")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", REDISVL_ASYNC_FACTORY, DeprecationWarning)
        async with AsyncRedisSaver.from_conn_string(url) as redis:
            await redis.asetup()
            yield redis


async def checkpoints(saver: BaseCheckpointSaver[str], thread: str) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] async for t in saver.alist(config(thread))]


def unique(name: str) -> str:
    return f"t/u/{name}-{time.time_ns()}"


async def test_many_turns_keep_the_newest_checkpoints_and_the_thread_answers(
    saver: BaseCheckpointSaver[str],
) -> None:
    graph, thread = compiled(saver), unique("long")
    for turn in range(6):
        await graph.ainvoke({"question": f"q{turn}"}, config(thread))
    before = await checkpoints(saver, thread)
    assert len(before) > KEEP

    report = await sweep(saver, RetentionSettings(keep_checkpoints=KEEP, thread_ttl_s=None))

    assert report.pruned >= 1 and report.deleted == []
    assert await checkpoints(saver, thread) == before[:KEEP]  # the newest, in order
    kept = await graph.aget_state(config(thread))
    assert kept.values["said"][-2:] == ["q5", "answer 6"] and len(kept.values["said"]) == 12
    done = await graph.ainvoke({"question": "q6"}, config(thread))
    assert done["said"][-2:] == ["q6", "answer 7"]  # the thread goes on from its state
    oldest_kept = {**config(thread)["configurable"], "checkpoint_id": before[KEEP - 1]}
    travelled = await graph.aget_state({"configurable": oldest_kept})
    assert travelled.values  # time travel to a kept checkpoint still works


async def test_a_thread_waiting_for_approval_is_pruned_and_still_resumes(
    saver: BaseCheckpointSaver[str],
) -> None:
    graph, thread = compiled(saver, approval=True), unique("approval")
    for turn in range(3):
        if turn:
            await graph.ainvoke(Command(resume="approve"), config(thread))
        await graph.ainvoke({"question": f"q{turn}"}, config(thread))
    waiting = await graph.aget_state(config(thread))
    assert waiting.interrupts and len(await checkpoints(saver, thread)) > KEEP

    await sweep(saver, RetentionSettings(keep_checkpoints=KEEP, thread_ttl_s=None))

    assert len(await checkpoints(saver, thread)) == KEEP
    still = await graph.aget_state(config(thread))
    assert [i.value for i in still.interrupts] == [{"tool": "create_note"}]
    done = await graph.ainvoke(Command(resume="deny"), config(thread))
    assert done["said"][-1] == "decided deny"


async def test_idle_threads_go_and_fresh_ones_stay(saver: BaseCheckpointSaver[str]) -> None:
    graph = compiled(saver)
    idle, fresh = unique("idle"), unique("fresh")
    await graph.ainvoke({"question": "old"}, config(idle))
    between = time.time()
    time.sleep(0.01)
    await graph.ainvoke({"question": "new"}, config(fresh))
    forgotten: list[str] = []

    async def forget(key: str) -> None:
        forgotten.append(key)

    ttl = 3600.0
    report = await sweep(
        saver,
        RetentionSettings(keep_checkpoints=None, thread_ttl_s=ttl, batch=1),
        now=between + ttl,
        forget=forget,
    )

    assert idle in report.deleted and forgotten.count(idle) == 1
    assert fresh not in report.deleted
    assert await checkpoints(saver, idle) == []
    assert (await graph.aget_state(config(idle))).values == {}
    assert (await graph.aget_state(config(fresh))).values["said"] == ["new", "answer 1"]


async def test_a_sweep_makes_no_blocking_call_on_the_event_loop(
    saver: BaseCheckpointSaver[str],
) -> None:
    graph, thread = compiled(saver), unique("blocking")
    for turn in range(3):
        await graph.ainvoke({"question": f"q{turn}"}, config(thread))
    with blockbuster_ctx():
        report = await sweep(
            saver, RetentionSettings(keep_checkpoints=2, thread_ttl_s=1.0), now=time.time()
        )
    assert report.pruned >= 1 and thread not in report.deleted


def test_cut_off_ids_sort_with_checkpoint_ids() -> None:
    from langgraph.checkpoint.base.id import uuid6

    now = time.time()
    made = str(uuid6(clock_seq=0))
    assert cut_off_id(now - 1) < made < cut_off_id(now + 1)
