"""``ragent eval answers`` in this process: offline it opens no socket; with a LangSmith key
it uploads the dataset, an experiment with every score, and the graph's traces to a real
(fake) LangSmith HTTP server on loopback."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from app.cli.main import cli
from app.evals import langsmith_upload
from tests.servers import REPO, free_port

pytestmark = pytest.mark.e2e

ITEMS = [
    {
        "id": "checkpoint",
        "question": "How often does SQLite run a checkpoint in WAL mode?",
        "reference": "When the WAL file reaches 1000 pages.",
        "gold_docs": ["sqlite-wal.html"],
        "tags": ["docs"],
    },
    {"id": "swallow", "question": "Who won the 2018 FIFA World Cup?", "must_refuse": True},
    {
        "id": "sum",
        "question": "What is 6 * 7?",
        "expected_tools": [{"name": "calculator", "args": {"expression": "6*7"}}],
        "tags": ["tools"],
    },
]


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(REPO / "samples" / "sqlite-wal.html", docs)
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "datasets.yaml").write_text(
        "datasets:\n  mini.jsonl:\n    corpus: ../docs\n    thresholds: {refusal_accuracy: 1.0}\n",
        encoding="utf-8",
    )
    path = sets / "mini.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in ITEMS), encoding="utf-8")
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path / "untouched"))
    for key in ("LANGSMITH_API_KEY", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(key, raising=False)
    return path


def _eval(dataset: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["eval", "answers", str(dataset), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_offline_run_opens_no_socket(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    connect = socket.socket.connect

    def record(self: socket.socket, address: object) -> None:
        opened.append(address)
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    assert not langsmith_upload.enabled()
    report = _eval(dataset)
    (mini,) = report["datasets"]
    assert mini["passed"] and mini["metrics"]["refusal_accuracy"] == 1.0
    assert mini["metrics"]["tool_args_accuracy"] == 1.0
    assert opened == []
    assert not (dataset.parent.parent / "untouched").exists()


@dataclass
class FakeLangSmith:
    """The LangSmith REST endpoints the client uses for datasets, experiments and traces."""

    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:  # noqa: C901 - one small handler per endpoint
        app = FastAPI()
        now = datetime.now(UTC).isoformat()

        @app.get("/info")
        async def info() -> dict[str, Any]:
            return {"version": "0.0-test", "batch_ingest_config": {}}

        @app.get("/datasets")
        async def list_datasets(request: Request) -> list[dict[str, Any]]:
            name = request.query_params.get("name")
            return [d for d in self.datasets.values() if name in (None, d["name"])]

        @app.post("/datasets")
        async def create_dataset(request: Request) -> dict[str, Any]:
            body = await request.json()
            new = {
                "id": str(uuid.uuid4()),
                "name": body["name"],
                "description": body.get("description"),
                "created_at": now,
                "modified_at": now,
                "data_type": "kv",
                "tenant_id": str(uuid.uuid4()),
            }
            self.datasets[new["id"]] = new
            return new

        @app.get("/datasets/{dataset_id}")
        async def read_dataset(dataset_id: str) -> dict[str, Any]:
            return self.datasets[dataset_id]

        @app.post("/examples/bulk")
        async def create_examples(request: Request) -> list[dict[str, Any]]:
            made = []
            for row in await request.json():
                example = {**row, "id": str(uuid.uuid4()), "created_at": now, "modified_at": now}
                self.examples[example["id"]] = example
                made.append(example)
            return made

        @app.get("/examples")
        async def list_examples(request: Request) -> list[dict[str, Any]]:
            q = request.query_params
            found = [
                e for e in self.examples.values() if q.get("dataset") in (None, e["dataset_id"])
            ]
            offset = int(q.get("offset", 0))
            return found[offset : offset + int(q.get("limit", 100))]

        @app.get("/sessions")
        async def list_sessions(request: Request) -> list[dict[str, Any]]:
            name = request.query_params.get("name")
            return [s for s in self.sessions.values() if name in (None, s["name"])]

        @app.post("/sessions")
        async def create_session(request: Request) -> dict[str, Any]:
            body = await request.json()
            fresh = {"id": str(uuid.uuid4()), "start_time": now, "tenant_id": str(uuid.uuid4())}
            session = {**fresh, **body}  # the client may choose the id itself
            self.sessions[session["id"]] = session
            return session

        @app.patch("/sessions/{session_id}")
        async def update_session(session_id: str, request: Request) -> dict[str, Any]:
            self.sessions[session_id].update(await request.json())
            return self.sessions[session_id]

        @app.post("/feedback")
        async def feedback(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.feedback.append(body)
            return body

        @app.post("/runs/batch")
        async def batch(request: Request) -> dict[str, Any]:
            self.runs.extend((await request.json()).get("post", []))
            return {}

        @app.post("/runs/multipart")
        async def multipart(request: Request) -> dict[str, Any]:
            form = await request.form()
            for name, value in form.multi_items():
                if name.startswith("post.") and name.count(".") == 1:
                    raw = await value.read() if hasattr(value, "read") else value
                    self.runs.append(json.loads(raw))
            return {}

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def other(path: str, request: Request) -> dict[str, Any]:
            self.unknown.append(f"{request.method} /{path}")
            return {}

        return app


@pytest.fixture
def langsmith() -> Iterator[tuple[FakeLangSmith, str]]:
    fake = FakeLangSmith()
    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "fake LangSmith did not start"
        time.sleep(0.01)
    try:
        yield fake, f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_langsmith_gets_the_dataset_scores_and_traces(
    dataset: Path, langsmith: tuple[FakeLangSmith, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = langsmith
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    report = _eval(dataset)  # any other host would trip the loopback-only socket guard
    (mini,) = report["datasets"]

    (uploaded,) = fake.datasets.values()
    assert uploaded["name"].startswith("ragent-mini-")
    questions = {e["inputs"]["question"] for e in fake.examples.values()}
    assert questions == {item["question"] for item in ITEMS}
    experiments = [s for s in fake.sessions.values() if s.get("reference_dataset_id")]
    assert [s["reference_dataset_id"] for s in experiments] == [uploaded["id"]]
    # LangSmith keeps scores to 4 decimals.
    want = {(r["id"], m, round(v, 4)) for r in mini["results"] for m, v in r["scores"].items()}
    by_run = {run["id"]: run for run in fake.runs}
    example_of = {e["id"]: e["inputs"]["id"] for e in fake.examples.values()}
    got = {
        (example_of[by_run[f["run_id"]]["reference_example_id"]], f["key"], round(f["score"], 4))
        for f in fake.feedback
    }
    assert got == want
    traced = [r for r in fake.runs if r.get("session_name") == langsmith_upload.PROJECT]
    assert {r["name"] for r in traced} >= {"ragent"}  # the compiled graph, one per question
    assert sum(r["name"] == "ragent" for r in traced) == len(ITEMS)
    assert fake.unknown == []
