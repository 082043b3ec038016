"""A real ``ragent serve`` with LangSmith tracing on sends redacted runs, and sends them.

The server process gets ``LANGSMITH_TRACING``, a key and the endpoint of a recording
LangSmith server in this process. The key belongs to a user named by an e-mail address; a
JSON request asks about the corpus (the answer quotes it) and a streamed one carries the
e-mail address and a phone number. The runs of both turns must arrive (the graph and its
nodes, with their timings) holding none of them, nor the questions or the answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from app.server import api_keys
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.langsmith_server import Recorder, accept_all, langsmith_tracing
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e

EMAIL, PHONE = "mallory.quokka@example.net", "+1 415 555 0142"
QUESTION = "How often does SQLite run a checkpoint in WAL mode?"
ARITHMETIC = f"I am {EMAIL}, call me on {PHONE}: what is 12*(7+3)?"


def _finished_turns(recorder: Recorder) -> int:
    return sum(
        run.get("name") == "ragent" and bool(run.get("end_time"))
        for run in recorder.runs().values()
    )


def test_served_turns_reach_langsmith_redacted(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = fresh_data_dir(corpus, tmp_path)
    store = api_keys.SqliteKeyStore(data_dir / "server.sqlite")
    try:
        _, key = api_keys.create(store, tenant_id="default", user_id=EMAIL)
    finally:
        store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "ragent"), "serve", "--port", str(port)]
    env = {"RAGENT_DATA_DIR": str(data_dir), "RAGENT_MEMORY_EXTRACTION": "explicit"}
    with (
        langsmith_tracing(accept_all(), monkeypatch) as recorder,
        running(args, health_url=f"{url}/healthz", env=env, cwd=tmp_path),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
    ):
        body = {"model": "ragent", "messages": [{"role": "user", "content": QUESTION}]}
        reply = http.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200, reply.text
        answer = reply.json()["choices"][0]["message"]["content"]
        streamed = {"messages": [{"role": "user", "content": ARITHMETIC}], "stream": True}
        with http.stream("POST", "/v1/chat/completions", json={**body, **streamed}) as r:
            assert r.status_code == 200
            assert "120" in r.read().decode()
        deadline = time.monotonic() + 30
        while _finished_turns(recorder) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert "1000 pages" in answer, answer
    assert _finished_turns(recorder) == 2
    runs = recorder.runs()
    names = {run.get("name") for run in runs.values()}
    assert {"guard_input", "retrieve", "respond", "execute_tools", "calculator"} <= names
    sent = recorder.text()
    planted = (EMAIL, PHONE, "mallory", "555 0142", QUESTION, ARITHMETIC, "12*(7+3)")
    for text in (*planted, answer, "1000 pages"):
        assert text not in sent, text
