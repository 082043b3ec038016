"""``ragent serve``: the HTTP API answers in the same shape as ``ragent ask --json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import QUESTION, Corpus, check_answer_payload, fresh_data_dir, running
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Served:
    client: httpx.Client
    data_dir: Path
    log: list[str]


@pytest.fixture(scope="module")
def served(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        running(
            [str(BIN / "ragent"), "serve", "--port", str(port), "--no-auth"],
            health_url=f"{url}/healthz",
            env={"RAGENT_DATA_DIR": str(data_dir)},
            cwd=root,
        ) as log,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        yield Served(client, data_dir, log)


def test_no_auth_is_announced(served: Served) -> None:
    assert any("--no-auth" in line and "warning" in line for line in served.log), served.log


def test_ask_answers_like_the_cli(served: Served) -> None:
    response = served.client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    payload = response.json()
    check_answer_payload(payload, served.data_dir)
    assert "1000 pages" in payload["answer"]


@pytest.mark.parametrize("question", ["", "   "], ids=["empty", "blank"])
def test_empty_question_is_a_400_json_error(served: Served, question: str) -> None:
    response = served.client.post("/v1/ask", json={"question": question})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)


def test_readyz(served: Served) -> None:
    response = served.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def test_the_readme_approval_example_works_offline(served: Served) -> None:
    # The README's curl example, on the default profile with no model server: the
    # offline answerer asks for create_note, the run waits, and the approval saves it.
    body = {
        "model": "ragent",
        "messages": [{"role": "user", "content": "Save a note: buy oat milk"}],
    }
    paused = served.client.post("/v1/chat/completions", json=body)
    assert paused.status_code == 200, paused.text
    [choice] = paused.json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "create_note"
    assert json.loads(call["function"]["arguments"]) == {
        "title": "buy oat milk",
        "text": "buy oat milk",
    }
    conversation = paused.json()["conversation_id"]

    done = served.client.post(f"/v1/threads/{conversation}/resume", json={"decision": "approve"})
    assert done.status_code == 200, done.text
    [choice] = done.json()["choices"]
    assert choice["finish_reason"] == "stop"
    assert "Saved the note 'buy oat milk'" in choice["message"]["content"]
    notes = served.client.get("/v1/memories", params={"kind": "notes"})
    assert notes.status_code == 200, notes.text
    assert "buy oat milk" in notes.text
