"""Scenarios of the LangGraph API driven by ``langgraph_sdk``, for any server that speaks it.

Each takes an SDK client, a :class:`Target` (what the server's model will say, and whose
identity the server runs as) and checks what a Studio or SDK user relies on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import SyncLangGraphClient

from app.memory.namespaces import namespace
from tests.e2e.conftest import QUESTION, check_citations
from tests.openai_server import Behaviour, Reply, ToolCalls

ANSWER = "By default SQLite runs a checkpoint when the WAL file reaches 1000 pages. [S1]"
FOLLOW_UP = "What is the default size of that threshold?"
NOTE = {"title": "Groceries", "text": "buy oat milk"}
SLOW = "one two three four five six seven eight nine ten eleven twelve [S1] "


@dataclass
class Target:
    """A server under test."""

    data_dir: Path
    tenant_id: str
    user_id: str
    plan: Callable[..., None]
    """Plans what the scripted model answers next (``plan(*behaviours)``)."""
    context: dict[str, Any] | None = None
    """The runs' ``context``: identity where the server takes it from there."""

    def say(self, *behaviours: Behaviour) -> None:
        self.plan(*behaviours)


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def ask(question: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}]}


def check_final_state(state: dict[str, Any], data_dir: Path) -> str:
    """The last message is a cited answer; citations are among this turn's sources."""
    assert "__error__" not in state, state
    final = state["messages"][-1]
    assert final["type"] == "ai", final
    answer = text_of(final)
    assert state["refused"] is False
    assert state["citations"], state
    check_citations(answer, state["citations"], data_dir)
    sources = {s["label"]: s["chunk_id"] for s in state["sources"]}
    for citation in state["citations"]:
        assert sources.get(citation["label"]) == citation["chunk_id"], citation
    return answer


def assistants_search(client: SyncLangGraphClient) -> None:
    found = client.assistants.search(graph_id="agent")
    assert [a["graph_id"] for a in found] == ["agent"], found
    assistant_id = found[0]["assistant_id"]
    assert client.assistants.get(assistant_id)["graph_id"] == "agent"
    schemas = client.assistants.get_schemas(assistant_id)
    assert "messages" in schemas["input_schema"]["properties"], schemas["input_schema"]
    assert "tenant_id" in schemas["context_schema"]["properties"]
    graph = client.assistants.get_graph(assistant_id)
    assert {"respond", "execute_tools"} <= {node["id"] for node in graph["nodes"]}


def run_wait_keeps_the_thread(client: SyncLangGraphClient, target: Target) -> str:
    target.say(Reply(ANSWER), Reply("It is 1000 pages. [S1]"))
    thread_id = client.threads.create()["thread_id"]
    first = client.runs.wait(thread_id, "agent", input=ask(QUESTION), context=target.context)
    assert isinstance(first, dict)
    answer = check_final_state(first, target.data_dir)
    assert "1000 pages" in answer
    assert [m["type"] for m in first["messages"]] == ["human", "ai"]

    second = client.runs.wait(thread_id, "agent", input=ask(FOLLOW_UP), context=target.context)
    assert isinstance(second, dict)
    check_final_state(second, target.data_dir)

    messages = client.threads.get_state(thread_id)["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]
    assert [text_of(m) for m in messages[:3]] == [QUESTION, answer, FOLLOW_UP]
    return thread_id


def run_stream_messages(client: SyncLangGraphClient, target: Target) -> None:
    target.say(Reply(ANSWER, piece=5))
    thread_id = client.threads.create()["thread_id"]
    created: list[Any] = []
    events = list(
        client.runs.stream(
            thread_id,
            "agent",
            input=ask(QUESTION),
            stream_mode=["values", "messages"],
            context=target.context,
            on_run_created=created.append,
        )
    )
    kinds = [part.event for part in events]
    assert kinds[0] == "metadata", kinds
    [run] = created  # from the response's Content-Location
    assert (run["run_id"], run["thread_id"]) == (events[0].data["run_id"], thread_id)
    assert "error" not in kinds, [p.data for p in events if p.event == "error"]
    partials = [text_of(p.data[0]) for p in events if p.event == "messages/partial"]
    assert len(partials) > 1, kinds
    values = [p.data for p in events if p.event == "values"]
    assert values and kinds[-1] == "values", kinds
    answer = check_final_state(values[-1], target.data_dir)
    assert partials[-1] == answer
    assert len(partials[0]) < len(answer)


def run_stream_updates_and_tuples(client: SyncLangGraphClient, target: Target) -> None:
    target.say(Reply(ANSWER, piece=5))
    events = list(
        client.runs.stream(
            None,
            "agent",
            input=ask(QUESTION),
            stream_mode=["updates", "messages-tuple"],
            context=target.context,
        )
    )
    kinds = [part.event for part in events]
    assert kinds[0] == "metadata" and "error" not in kinds, kinds
    nodes = [next(iter(p.data)) for p in events if p.event == "updates"]
    assert {"guard_input", "respond", "guard_output"} <= set(nodes), nodes
    pieces = [p.data for p in events if p.event == "messages"]
    replies = [c for c, meta in pieces if meta["langgraph_node"] == "respond"]
    assert len(replies) > 1, pieces
    assert "".join(text_of(c) for c in replies) == ANSWER


def tool_calls(client: SyncLangGraphClient, target: Target) -> None:
    target.say(
        ToolCalls([("calculator", json.dumps({"expression": "17 * 23"}))]),
        Reply("17 * 23 is 391."),
    )
    thread_id = client.threads.create()["thread_id"]
    state = client.runs.wait(
        thread_id, "agent", input=ask("What is 17 * 23?"), context=target.context
    )
    assert isinstance(state, dict) and "__error__" not in state, state
    *_, result, final = state["messages"]
    assert (result["type"], result["name"], result["status"]) == ("tool", "calculator", "success")
    assert "391" in text_of(result) and text_of(final) == "17 * 23 is 391."


def approval_resumed_with_command(
    client: SyncLangGraphClient, target: Target, context: dict[str, Any] | None = None
) -> None:
    """A write pauses for approval; ``Command(resume=...)`` runs it; the note is the caller's.

    ``context`` replaces the target's (a forged identity, to check it is ignored).
    """
    context = context or target.context
    target.say(ToolCalls([("create_note", json.dumps(NOTE))]), Reply("Saved your note."))
    thread_id = client.threads.create()["thread_id"]
    paused_run = client.runs.wait(
        thread_id, "agent", input=ask("Save a note: buy oat milk"), context=context
    )
    assert isinstance(paused_run, dict) and "__interrupt__" in paused_run, paused_run
    paused = client.threads.get_state(thread_id)
    assert paused["next"] == ["execute_tools"], paused
    [request] = [i["value"] for task in paused["tasks"] for i in task["interrupts"]]
    assert request["kind"] == "tool_approval"
    assert [(c["tool"], c["args"], c["risk"]) for c in request["calls"]] == [
        ("create_note", NOTE, "write")
    ]
    assert client.threads.get(thread_id)["status"] == "interrupted"

    done = client.runs.wait(thread_id, "agent", command={"resume": "approve"}, context=context)
    assert isinstance(done, dict) and "__error__" not in done, done
    *_, result, final = done["messages"]
    assert (result["name"], result["status"]) == ("create_note", "success"), result
    assert text_of(result).startswith("Saved the note 'Groceries'")
    assert text_of(final) == "Saved your note."
    assert client.threads.get_state(thread_id)["next"] == []
    scope = list(namespace("notes", target.tenant_id, target.user_id))
    items = client.store.search_items(scope)["items"]
    assert [item["value"]["text"] for item in items] == ["buy oat milk"]


def threads_search_state_history(client: SyncLangGraphClient, target: Target) -> None:
    target.say(Reply(ANSWER))
    thread_id = client.threads.create(metadata={"project": "wal"})["thread_id"]
    client.runs.wait(thread_id, "agent", input=ask(QUESTION), context=target.context)
    found = client.threads.search(metadata={"project": "wal"})
    assert [t["thread_id"] for t in found] == [thread_id]
    assert found[0]["status"] == "idle" and found[0]["values"]["messages"]
    state = client.threads.get_state(thread_id)
    assert state["checkpoint"]["thread_id"] == thread_id and state["next"] == []
    history = client.threads.get_history(thread_id, limit=50)
    assert len(history) > 2
    assert history[0]["checkpoint"] == state["checkpoint"]  # newest first
    assert history[-1]["values"].get("messages", []) == []
    # As a config: the form both LangGraph's server and ragent take.
    before: Any = {"configurable": history[1]["checkpoint"]}
    earlier = client.threads.get_history(thread_id, limit=1, before=before)
    assert earlier[0]["checkpoint"] == history[2]["checkpoint"]


def store_items(client: SyncLangGraphClient, target: Target) -> None:
    scope = ["prefs", *namespace("notes", target.tenant_id, target.user_id)[1:]]
    client.store.put_item(scope, "colour", {"text": "green"})
    client.store.put_item(scope, "food", {"text": "soup"})
    item = client.store.get_item(scope, "colour")
    assert item is not None and item["value"] == {"text": "green"}
    keys = {i["key"] for i in client.store.search_items(scope)["items"]}
    assert keys == {"colour", "food"}
    assert scope in client.store.list_namespaces()["namespaces"]
    client.store.delete_item(scope, "food")
    assert {i["key"] for i in client.store.search_items(scope)["items"]} == {"colour"}


def background_run_join_and_list(client: SyncLangGraphClient, target: Target) -> None:
    target.say(Reply(ANSWER, piece=4, gap_s=0.05))
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=ask(QUESTION), context=target.context)
    assert run["status"] in {"pending", "running"}
    with pytest.raises(httpx.HTTPStatusError) as busy:
        client.runs.create(
            thread_id,
            "agent",
            input=ask("again?"),
            context=target.context,
            multitask_strategy="reject",
        )
    assert busy.value.response.status_code == 409
    state = client.runs.join(thread_id, run["run_id"])
    assert isinstance(state, dict)
    check_final_state(state, target.data_dir)
    assert client.runs.get(thread_id, run["run_id"])["status"] == "success"
    assert [r["run_id"] for r in client.runs.list(thread_id)] == [run["run_id"]]


def cancel_stops_a_run(client: SyncLangGraphClient, target: Target) -> None:
    """A cancelled run stops soon, says ``interrupted``, and the thread takes the next run."""
    target.say(Reply(SLOW * 20, piece=2, gap_s=0.1), Reply(ANSWER))
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=ask(QUESTION), context=target.context)
    deadline = time.monotonic() + 30
    while client.runs.get(thread_id, run["run_id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert time.monotonic() - started < 10
    assert client.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    state = client.runs.wait(thread_id, "agent", input=ask(QUESTION), context=target.context)
    assert isinstance(state, dict)
    check_final_state(state, target.data_dir)


def debug_stream(client: SyncLangGraphClient, target: Target) -> None:
    """``debug`` events (Studio's graph view): checkpoints and tasks, named by the thread id."""
    target.say(Reply(ANSWER))
    thread_id = client.threads.create()["thread_id"]
    events = list(
        client.runs.stream(
            thread_id, "agent", input=ask(QUESTION), stream_mode="debug", context=target.context
        )
    )
    debug = [e.data for e in events if e.event == "debug"]
    kinds = {d["type"] for d in debug}
    assert {"checkpoint", "task", "task_result"} <= kinds, kinds
    checkpoints = [d["payload"] for d in debug if d["type"] == "checkpoint"]
    assert {c["checkpoint"]["thread_id"] for c in checkpoints} == {thread_id}
    tasks = {d["payload"]["name"] for d in debug if d["type"] == "task"}
    assert {"guard_input", "respond"} <= tasks, tasks
    assert f"/{target.user_id}/" not in json.dumps([e.data for e in events])
