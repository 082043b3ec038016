"""``/readyz`` says whether this pod can serve; ``/healthz/dependencies`` reports each engine.

A real ``ragent serve`` whose model server is down (its port is closed): with the offline
fallback on it still answers, so it is ready, and the dependency report names the model;
with the fallback off it cannot answer, so it is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir, running
from tests.servers import BIN, free_port

pytestmark = pytest.mark.e2e


@contextmanager
def _serve(corpus: Corpus, root: Path, *, fallback: bool) -> Iterator[httpx.Client]:
    data_dir = fresh_data_dir(corpus, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "RAGENT_DATA_DIR": str(data_dir),
        "RAGENT_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",  # nothing listens
        "RAGENT_LLM_MODEL": "down",
        "RAGENT_LLM_OFFLINE_FALLBACK": str(fallback).lower(),
        "RAGENT_LLM_MAX_RETRIES": "0",
    }
    args = [str(BIN / "ragent"), "serve", "--port", str(port), "--no-auth"]
    with (
        running(args, health_url=f"{url}/healthz", env=env, cwd=root),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        yield client


def test_model_down_with_offline_fallback_is_ready_and_reported(
    corpus: Corpus, tmp_path: Path
) -> None:
    with _serve(corpus, tmp_path, fallback=True) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded"
        assert ready.json()["degraded"] == ["chat_model"]
        assert ready.json()["checks"]["chat_model"]["status"] == "error"

        answer = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]

        report = client.get("/healthz/dependencies")
        assert report.status_code == 200, report.text
        checks = report.json()["checks"]
        assert checks["chat_model"]["status"] == "error", checks
        assert checks["vector_index (embedded)"]["status"] == "ok", checks
        assert checks["keyword_index (embedded)"]["status"] == "ok", checks


def test_model_down_without_fallback_is_not_ready(corpus: Corpus, tmp_path: Path) -> None:
    with _serve(corpus, tmp_path, fallback=False) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "not_ready" and body["blocking"] == ["chat_model"], body
        assert body["error"]["code"] == "not_ready"
        # Monitoring's view is the same report, answered with 200.
        report = client.get("/healthz/dependencies")
        assert report.status_code == 200 and report.json()["status"] == "not_ready"
