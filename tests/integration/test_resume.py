"""A thread resumes from its checkpoint in a new process, with SQLite and with Redis.

Every turn runs in its own process (``ragent ask`` or a driver that is SIGKILLed right
after answering), so the only way turn 2 can know turn 1 is the checkpointer. Turn 2 is
a short anaphoric follow-up: the route node searches it together with the previous
question (``standalone_query``), so its sources come from turn 1's topic, while the
same follow-up on a fresh thread retrieves from a different document.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from tests.integration.conftest import BACKENDS, Deployment, deployment, run_python

pytestmark = pytest.mark.integration

QUESTION = "How do I sort a list in Python?"
FOLLOW_UP = "Is it faster?"
"""Alone, "faster" retrieves the SQLite WAL page; after QUESTION, the sorting HOWTO."""
THREAD = "t-resume"
SORTING = "python-sorting-howto.txt"
WAL = "sqlite-wal.html"

# One turn like `ragent ask`, then SIGKILL inside the open checkpointer: no connection is
# closed, nothing is flushed, no atexit handler runs.
KILLED_TURN = """
import asyncio, json, os, signal, sys
from app.context import Context
from app.graphs.agent import compile_agent
from app.memory.checkpoint import open_checkpointer
from app.resources import build_resources, use_resources
from app.turns import ask
from app.settings import load_settings

question, thread, user = sys.argv[1:4]

async def turn():
    settings = load_settings()
    context = Context(tenant_id=settings.tenant_id, user_id=user)
    with use_resources(build_resources(settings)):
        async with open_checkpointer(settings) as saver:
            answer = await ask(
                compile_agent(saver), question, context=context, thread_id=thread,
                max_chars=settings.limits.max_input_chars,
            )
            sys.stdout.write(json.dumps(answer.as_dict()) + "\\n")
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(turn())
"""


def cited_files(answer: dict[str, Any]) -> set[str]:
    return {Path(c["source"]).name for c in answer["citations"]}


def transcript(messages: list[Any]) -> list[tuple[str, str]]:
    """The human questions and final answers of a thread, in order."""
    return [
        ("human" if isinstance(m, HumanMessage) else "ai", m.text)
        for m in messages
        if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and not m.tool_calls)
    ]


def assert_resumed(dep: Deployment, first: dict[str, Any], second: dict[str, Any]) -> None:
    """Turn 2 ran on turn 1's checkpoint: state, retrieval query and sources show it."""
    assert not first["refused"] and cited_files(first) == {SORTING}, first
    state = dep.state(THREAD)
    assert transcript(state["messages"]) == [
        ("human", QUESTION),
        ("ai", first["answer"]),
        ("human", FOLLOW_UP),
        ("ai", second["answer"]),
    ]
    # The route node of the turn-2 process built its query from turn 1's question.
    assert state["query"] == f"{QUESTION} {FOLLOW_UP}"
    assert second["thread_id"] == THREAD
    assert not second["refused"] and second["citations"], second
    assert cited_files(second) == {SORTING}, second


@pytest.fixture(scope="module")
def fresh_follow_up(
    tmp_path_factory: pytest.TempPathFactory, ingested_index: Path
) -> dict[str, Any]:
    """The follow-up asked alone, on a fresh thread: it is about SQLite WAL, not sorting."""
    with deployment("sqlite", tmp_path_factory.mktemp("fresh"), ingested_index) as dep:
        answer = dep.ask(FOLLOW_UP, thread="t-fresh")
        assert len(dep.state("t-fresh")["messages"]) == 2
    assert not answer["refused"] and cited_files(answer) == {WAL}, answer
    return answer


@pytest.fixture(scope="module", params=BACKENDS)
def conversation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ingested_index: Path
) -> Iterator[tuple[Deployment, dict[str, Any]]]:
    """A deployment where user ``local`` asked QUESTION on THREAD, in a process now gone."""
    backend = request.param
    with deployment(backend, tmp_path_factory.mktemp(backend), ingested_index) as dep:
        yield dep, dep.ask(QUESTION, thread=THREAD)


def test_thread_resumes_in_a_new_process(
    conversation: tuple[Deployment, dict[str, Any]], fresh_follow_up: dict[str, Any]
) -> None:
    dep, first = conversation
    second = dep.ask(FOLLOW_UP, thread=THREAD)
    assert_resumed(dep, first, second)
    # Without turn 1 the same follow-up gets a different answer from another document.
    assert second["answer"] != fresh_follow_up["answer"]
    assert cited_files(fresh_follow_up) == {WAL}


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_resumes_after_sigkill(
    backend: str, tmp_path: Path, ingested_index: Path, fresh_follow_up: dict[str, Any]
) -> None:
    with deployment(backend, tmp_path, ingested_index) as dep:
        killed = run_python(KILLED_TURN, QUESTION, THREAD, "local", env=dep.env)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        first = json.loads(killed.stdout)
        if dep.redis is not None:
            # The Redis server crashes too, and comes back on the same port and dir.
            dep.redis.kill()
            dep.redis.start()
        else:
            # The connection was never closed: SQLite must recover from its WAL file.
            assert (dep.data_dir / "checkpoints.sqlite-wal").exists()
        second = dep.ask(FOLLOW_UP, thread=THREAD)
        assert_resumed(dep, first, second)
        assert second["answer"] != fresh_follow_up["answer"]


def test_thread_id_is_private_to_its_user(
    conversation: tuple[Deployment, dict[str, Any]], fresh_follow_up: dict[str, Any]
) -> None:
    dep, first = conversation
    owner_before = dep.state(THREAD)["messages"]
    assert transcript(owner_before)[:2] == [("human", QUESTION), ("ai", first["answer"])]

    other = dep.ask(FOLLOW_UP, thread=THREAD, user="mallory")

    # Mallory's turn saw none of local's history: it is exactly a fresh-thread answer.
    assert other["thread_id"] == THREAD
    assert other["answer"] == fresh_follow_up["answer"]
    assert other["citations"] == fresh_follow_up["citations"]
    theirs = dep.state(THREAD, user="mallory")
    assert transcript(theirs["messages"]) == [("human", FOLLOW_UP), ("ai", other["answer"])]
    assert theirs["query"] == FOLLOW_UP
    # And local's thread was neither read into nor written by mallory's turn.
    assert dep.state(THREAD)["messages"] == owner_before
