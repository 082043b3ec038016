"""``langgraph dev`` serves the agent from ``langgraph.json``: runs, streaming, threads, Redis.

The server runs in a scratch folder that mirrors the repository with symlinks,
so its ``.langgraph_api`` state never lands in the checkout and the paths in
``langgraph.json`` (relative to the working directory) still resolve. Hot
reload is off: other edits to the checkout must not restart it mid-test.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from app.memory.namespaces import namespace
from tests.e2e.conftest import (
    QUESTION,
    Corpus,
    check_answer_payload,
    check_citations,
    fresh_data_dir,
    running,
)
from tests.openai_server import Reply, ToolCalls, openai_server
from tests.servers import BIN, REPO, free_port, redis_server

pytestmark = pytest.mark.e2e

CONTEXT = {"tenant_id": "default", "user_id": "e2e", "acl_groups": []}
FOLLOW_UP = "What is the default size of that threshold?"


@dataclass(frozen=True)
class DevServer:
    client: httpx.Client
    data_dir: Path
    log: list[str]

    def output(self) -> str:
        return "".join(self.log)[-6000:]


@contextmanager
def langgraph_dev(corpus: Corpus, root: Path, env: dict[str, str]) -> Iterator[DevServer]:
    """Run ``langgraph dev --config langgraph.json`` on a copy of the corpus index."""
    workdir = root / "project"
    workdir.mkdir()
    for entry in REPO.iterdir():
        if not entry.name.startswith("."):
            (workdir / entry.name).symlink_to(entry)
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        str(BIN / "langgraph"),
        "dev",
        "--port", str(port),
        "--no-browser",
        "--no-reload",
        "--config", "langgraph.json",
    ]  # fmt: skip
    with (
        running(
            args,
            health_url=f"{url}/ok",
            env={"RAGENT_DATA_DIR": str(data_dir), **env},
            cwd=workdir,
        ) as log,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        server = DevServer(client, data_dir, log)
        yield server
        check_no_blocking_call(server)


def check_no_blocking_call(server: DevServer) -> None:
    """Blockbuster logged no blocking call made on the event loop."""
    flagged = [line for line in server.log if "BlockingError" in line]
    assert not flagged, "blockbuster flagged a blocking call:\n" + "".join(flagged[:5])


def sdk(server: DevServer) -> SyncLangGraphClient:
    """A ``langgraph_sdk`` client of the server."""
    return get_sync_client(url=str(server.client.base_url), api_key=None, timeout=120)


def audit_of(server: DevServer) -> list[tuple[str, str, bool]]:
    """``(tool, outcome, approved_by_user)`` of each audit record written so far."""
    path = server.data_dir / "audit.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["tool"], r["outcome"], r["approved_by_user"]) for r in records]


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def new_thread(client: httpx.Client) -> str:
    response = client.post("/threads", json={})
    assert response.status_code == 200, response.text
    return response.json()["thread_id"]


def run_input(question: str) -> dict[str, Any]:
    return {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": question}]},
        "context": CONTEXT,
    }


def run_wait(server: DevServer, thread_id: str, question: str) -> dict[str, Any]:
    response = server.client.post(f"/threads/{thread_id}/runs/wait", json=run_input(question))
    assert response.status_code == 200, f"{response.text}\n{server.output()}"
    state = response.json()
    assert "__error__" not in state, f"{state['__error__']}\n{server.output()}"
    return state


def check_final_state(state: dict[str, Any], data_dir: Path) -> str:
    """The last message is a cited answer; citations are among this turn's sources."""
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


def sse_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """Parse a ``text/event-stream`` body into ``(event, data)`` pairs."""
    event, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
    if data:
        yield event, json.loads("\n".join(data))


@pytest.fixture(scope="module")
def dev(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """``langgraph dev`` on the default profile: SQLite checkpoints in RAGENT_DATA_DIR."""
    # Our routes without keys here; tests/e2e/test_api_langgraph_dev.py runs them with keys.
    env = {"RAGENT_SERVER_AUTH": "false"}
    with langgraph_dev(corpus, tmp_path_factory.mktemp("langgraph-dev"), env) as server:
        yield server


def test_readyz_builds_the_engines_off_the_event_loop(dev: DevServer) -> None:
    # First request of the module: nothing has built the engines yet, and blockbuster
    # turns any blocking call made on the event loop into a 503 here.
    ready = dev.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


def test_fastapi_routes_are_served_by_the_same_process(dev: DevServer) -> None:
    health = dev.client.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok"}


def test_assistants_search_lists_the_agent_graph(dev: DevServer) -> None:
    response = dev.client.post("/assistants/search", json={"graph_id": "agent"})
    assert response.status_code == 200, response.text
    assistants = response.json()
    assert [a["graph_id"] for a in assistants] == ["agent"], assistants
    assert any("ThreadedSqliteSaver" in line for line in dev.log), dev.output()


def test_run_wait_answers_with_citations_and_keeps_the_thread(dev: DevServer) -> None:
    thread_id = new_thread(dev.client)

    first = run_wait(dev, thread_id, QUESTION)
    answer = check_final_state(first, dev.data_dir)
    assert "1000 pages" in answer
    assert [m["type"] for m in first["messages"]] == ["human", "ai"]

    second = run_wait(dev, thread_id, FOLLOW_UP)
    check_final_state(second, dev.data_dir)

    response = dev.client.get(f"/threads/{thread_id}/state")
    assert response.status_code == 200, response.text
    messages = response.json()["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]
    assert text_of(messages[0]) == QUESTION
    assert text_of(messages[1]) == answer
    assert text_of(messages[2]) == FOLLOW_UP

    # The thread lives in our AsyncSqliteSaver, not in the server's in-memory store.
    uri = f"file:{dev.data_dir / 'checkpoints.sqlite'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    assert count > 0


def test_run_stream_streams_tokens_and_ends_with_the_answer(dev: DevServer) -> None:
    thread_id = new_thread(dev.client)
    body = {**run_input(QUESTION), "stream_mode": ["values", "messages"]}
    with dev.client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))

    kinds = [kind for kind, _ in events]
    assert kinds[0] == "metadata", kinds
    assert "error" not in kinds, [data for kind, data in events if kind == "error"]
    partials = [text_of(data[0]) for kind, data in events if kind == "messages/partial"]
    assert len(partials) > 1, kinds
    values = [data for kind, data in events if kind == "values"]
    assert values and kinds[-1] == "values", kinds
    final = values[-1]
    answer = check_final_state(final, dev.data_dir)
    assert partials[-1] == answer
    assert len(partials[0]) < len(answer)


def test_v1_ask_works_inside_langgraph_dev(dev: DevServer) -> None:
    response = dev.client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 200, f"{response.text}\n{dev.output()}"
    check_answer_payload(response.json(), dev.data_dir)


def test_langgraph_dev_runs_on_the_redis_checkpointer(corpus: Corpus, tmp_path: Path) -> None:
    with redis_server() as server:
        env = {
            "RAGENT_CHECKPOINT_BACKEND": "redis",
            "RAGENT_CHECKPOINT_REDIS_URL": server.url,
        }
        with langgraph_dev(corpus, tmp_path, env) as dev_redis:
            assert any("AsyncRedisSaver" in line for line in dev_redis.log), dev_redis.output()
            thread_id = new_thread(dev_redis.client)
            state = run_wait(dev_redis, thread_id, QUESTION)
            check_final_state(state, dev_redis.data_dir)
            response = dev_redis.client.get(f"/threads/{thread_id}/state")
            assert response.status_code == 200, response.text
            assert len(response.json()["values"]["messages"]) == 2

            with closing(redis.Redis.from_url(server.url, decode_responses=True)) as client:
                keys = client.keys("checkpoint*")
            assert keys, "no checkpoint keys in Redis"
            assert any(thread_id in key for key in keys), keys[:10]
            assert not (dev_redis.data_dir / "checkpoints.sqlite").exists()


def test_indexer_graph_ingests_for_the_run_tenant(dev: DevServer, tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nThe staging cluster is rebuilt every Tuesday at 04:00 UTC.\n")
    found = dev.client.post("/assistants/search", json={"graph_id": "indexer"}).json()
    assert [a["graph_id"] for a in found] == ["indexer"]
    thread_id = new_thread(dev.client)
    response = dev.client.post(
        f"/threads/{thread_id}/runs/wait",
        json={
            "assistant_id": "indexer",
            "input": {"paths": [str(doc)]},
            "context": {"tenant_id": "studio-tenant"},
        },
    )
    assert response.status_code == 200, f"{response.text}\n{dev.output()}"
    state = response.json()
    assert state["error"] == "" and state["report"]["documents"] == 1, state
    # The agent finds the new document for that tenant only.
    ask = dev.client.post(
        f"/threads/{new_thread(dev.client)}/runs/wait",
        json={
            **run_input("When is the staging cluster rebuilt?"),
            "context": {"tenant_id": "studio-tenant"},
        },
    ).json()
    assert "Tuesday" in text_of(ask["messages"][-1])
    other = run_wait(dev, new_thread(dev.client), "When is the staging cluster rebuilt?")
    assert "Tuesday" not in text_of(other["messages"][-1])


def test_tool_calls_run_inside_langgraph_dev(dev: DevServer) -> None:
    with sdk(dev) as client:
        check_tool_calls(dev, client)
    check_no_blocking_call(dev)


def check_tool_calls(dev: DevServer, client: SyncLangGraphClient) -> None:
    thread_id = client.threads.create()["thread_id"]
    for question, tool in [
        ("What is 17 * 23?", "calculator"),
        ("What time is it in Europe/Paris?", "current_time"),
    ]:
        state = client.runs.wait(
            thread_id,
            "agent",
            input={"messages": [{"role": "user", "content": question}]},
            context=CONTEXT,
        )
        assert isinstance(state, dict) and "__error__" not in state, f"{state}\n{dev.output()}"
        *_, result, final = state["messages"]
        assert (result["type"], result["name"], result["status"]) == ("tool", tool, "success")
        assert text_of(result) in text_of(final), final
    assert "391" in text_of(client.threads.get_state(thread_id)["values"]["messages"][3])
    assert [(t, outcome) for t, outcome, _ in audit_of(dev)][-2:] == [
        ("calculator", "ok"),
        ("current_time", "ok"),
    ]


def test_an_approval_interrupt_is_resumed_through_the_sdk(corpus: Corpus, tmp_path: Path) -> None:
    model = "scripted-model"
    note = {"title": "Groceries", "text": "buy oat milk"}
    with openai_server() as srv:
        srv.plan(model, ToolCalls([("create_note", json.dumps(note))]), Reply("Saved your note."))
        env = {
            "RAGENT_LLM_BASE_URL": srv.base_url,
            "RAGENT_LLM_MODEL": model,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
        }
        with langgraph_dev(corpus, tmp_path, env) as server, sdk(server) as client:
            thread_id = client.threads.create()["thread_id"]
            question = {"messages": [{"role": "user", "content": "Save a note: buy oat milk"}]}
            client.runs.wait(thread_id, "agent", input=question, context=CONTEXT)
            paused = client.threads.get_state(thread_id)
            assert paused["next"] == ["execute_tools"], f"{paused}\n{server.output()}"
            [request] = [i["value"] for task in paused["tasks"] for i in task["interrupts"]]
            assert request["kind"] == "tool_approval"
            assert [(c["tool"], c["args"], c["risk"]) for c in request["calls"]] == [
                ("create_note", note, "write")
            ]
            assert audit_of(server) == []  # nothing runs before the decision

            done = client.runs.wait(
                thread_id, "agent", command={"resume": "approve"}, context=CONTEXT
            )
            assert isinstance(done, dict) and "__error__" not in done, server.output()
            *_, result, final = done["messages"]
            assert (result["name"], result["status"]) == ("create_note", "success"), result
            assert text_of(result).startswith("Saved the note 'Groceries'")
            assert text_of(final) == "Saved your note."
            assert client.threads.get_state(thread_id)["next"] == []
            assert audit_of(server) == [("create_note", "ok", True)]
            scope = list(namespace("notes", CONTEXT["tenant_id"], CONTEXT["user_id"]))
            items = client.store.search_items(scope)["items"]
            assert [item["value"]["text"] for item in items] == ["buy oat milk"]
            check_no_blocking_call(server)
