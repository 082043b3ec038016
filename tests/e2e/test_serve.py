"""``ragent serve``: the HTTP API answers in the same shape as ``ragent ask --json``."""

from __future__ import annotations

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
