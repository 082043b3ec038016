r"""Text that is not valid Unicode, on the paths ``/v1``'s ``check_text`` does not cover.

A lone surrogate (``"\ud800"`` in JSON) or bytes that are not UTF-8 must get a clear error
in each path's own shape, with nothing run or written: ``/mcp`` a JSON-RPC error (the
real MCP client still works after), the LangGraph API a 400 in JSON (the thread stays
empty), ``ragent ask`` and ``ragent ingest`` one line and a non-zero exit (a folder's file
whose name is not UTF-8 is reported, the rest ingested).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir
from tests.e2e.test_mcp_server import call, text_of
from tests.openai_server import OpenAIServer, Reply
from tests.servers import BIN

pytestmark = pytest.mark.e2e

ESCAPED = b'"caf\\ud800"'
"""A lone surrogate as JSON escapes it (``json.dumps`` with ``ensure_ascii``)."""
NOT_UTF8 = b'"caf\xff"'
UTF8_SURROGATE = b'"caf\xed\xa0\x80"'
"""A surrogate in UTF-8's form, which UTF-8 forbids."""
TEXTS = {"escaped surrogate": ESCAPED, "not UTF-8": NOT_UTF8, "UTF-8 surrogate": UTF8_SURROGATE}


def _mcp_call(tool: str, args: bytes) -> bytes:
    head = b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "'
    return head + tool.encode() + b'", "arguments": ' + args + b"}}"


MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("text", list(TEXTS))
@pytest.mark.parametrize("tool", ["ask", "search_knowledge"])
def test_mcp_answers_a_json_rpc_error(api: Api, model: OpenAIServer, tool: str, text: str) -> None:
    key = api.key("mcp-text")
    field = b'{"question": ' if tool == "ask" else b'{"query": '
    body = _mcp_call(tool, field + TEXTS[text] + b"}")
    with httpx.Client(base_url=api.url, timeout=30) as http:
        response = http.post(
            "/mcp", content=body, headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 400, response.text
    reply = response.json()
    assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] in (-32700, -32602), reply
    assert "valid Unicode" in reply["error"]["message"]
    assert reply["id"] == (7 if text == "escaped surrogate" else None)
    assert model.calls(MODEL) == 0
    # The official client on the same key goes on as before.
    model.plan(MODEL, Reply("Fine. [S1]"))
    result = call(api, key, "ask", {"question": QUESTION})
    assert result.isError is False, text_of(result)


def _run_input(text: bytes) -> bytes:
    return b'{"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": ' + (
        text + b"}]}}"
    )


@pytest.mark.parametrize("text", list(TEXTS))
@pytest.mark.parametrize("route", ["runs/wait", "runs/stream", "runs", "state", "stateless"])
def test_the_langgraph_api_answers_400(
    api: Api, model: OpenAIServer, route: str, text: str
) -> None:
    key = api.key("lg-text")
    with get_sync_client(url=api.url, api_key=key) as client:
        thread_id = client.threads.create()["thread_id"]
    path, body = {
        "runs/wait": (f"/threads/{thread_id}/runs/wait", _run_input(TEXTS[text])),
        "runs/stream": (f"/threads/{thread_id}/runs/stream", _run_input(TEXTS[text])),
        "runs": (f"/threads/{thread_id}/runs", _run_input(TEXTS[text])),
        "state": (
            f"/threads/{thread_id}/state",
            b'{"values": {"messages": [{"type": "human", "content": ' + TEXTS[text] + b"}]}}",
        ),
        "stateless": ("/runs/wait", _run_input(TEXTS[text])),
    }[route]
    headers = {"Content-Type": "application/json", "X-Api-Key": key}
    with httpx.Client(base_url=api.url, timeout=30) as http:
        response = http.post(path, content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_text", response.text
        # Nothing ran, nothing was written: the thread is as it was.
        state = http.get(f"/threads/{thread_id}/state", headers=headers).json()
    assert state["values"] == {} or state["values"].get("messages", []) == [], state
    assert model.calls(MODEL) == 0


def test_store_and_thread_metadata_answer_400(api: Api) -> None:
    headers = {"Content-Type": "application/json", "X-Api-Key": api.key("lg-text-store")}
    bodies: list[tuple[str, str, bytes]] = [
        ("PUT", "/store/items", b'{"namespace": ["notes"], "key": "k", "value": {"t": '),
        ("POST", "/threads", b'{"metadata": {"t": '),
        ("POST", "/threads/search", b'{"metadata": {"t": '),
    ]
    with httpx.Client(base_url=api.url, timeout=30) as http:
        for method, path, head in bodies:
            for raw in TEXTS.values():
                response = http.request(method, path, content=head + raw + b"}}", headers=headers)
                assert response.status_code == 400, (path, response.text)
                assert response.json()["error"]["code"] == "invalid_text"
        listed: Any = http.post("/threads/search", json={}, headers=headers).json()
    assert listed == []


@pytest.fixture
def cli(corpus: Corpus, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """``ragent`` with arguments given as bytes, on a data dir of its own."""
    env = {
        **os.environ,
        "RAGENT_DATA_DIR": str(fresh_data_dir(corpus, tmp_path / "data")),
        "RAGENT_LLM_BASE_URL": "http://127.0.0.1:9/v1",  # never reached
        "RAGENT_LLM_OFFLINE_FALLBACK": "false",
    }

    def run(*args: bytes) -> subprocess.CompletedProcess[bytes]:
        command = [str(BIN / "ragent").encode(), *args]
        return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True)

    return run


Cli = Callable[..., subprocess.CompletedProcess[bytes]]


def test_the_cli_refuses_a_question_that_is_not_utf8(cli: Cli) -> None:
    done = cli(b"ask", b"caf\xff?")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("ragent: error: the question is not valid text"), lines
    assert b"Traceback" not in done.stderr and done.stdout == b""


def test_ingest_reports_names_that_are_not_utf8(cli: Cli, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# Notes\n\nThe cache keeps answers for a day.\n")
    bad = os.path.join(os.fsencode(docs), b"caf\xff.md")
    with open(bad, "wb") as file:
        file.write(b"# Other\n\nA file whose name is not UTF-8.\n")

    done = cli(b"ingest", os.fsencode(docs), b"--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["documents"] == 1 and report["failed"] == [], report
    [dropped] = report["dropped"]
    assert dropped["source"].endswith("caf\\xff.md") and "not UTF-8" in dropped["reason"]

    done = cli(b"ingest", bad)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        f"ragent: error: the path is not UTF-8 (shown escaped): {docs}/caf\\xff.md"
    )
