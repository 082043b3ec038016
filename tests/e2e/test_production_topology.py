"""The production topology, started natively: two API replicas, one ingestion worker.

Two ``ragent serve`` processes and one ``ragent worker`` share a real Redis (keys, rate
limits, jobs, the ingestion queue and its uploads, the audit stream), Elasticsearch and
Weaviate; each process has a data dir of its own, so nothing reaches another through a
disk. The model is the offline answerer (tests/realmodel/test_production_topology.py
runs this topology on the compose settings, with a local model). An upload through
replica A is searchable through replica B; replica A killed with SIGKILL loses nothing;
a worker killed mid-job is replaced and the job finishes once, with no chunk written twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.server import api_keys
from tests.e2e.remote_fixtures import (  # noqa: F401 - fixtures
    RemoteProfile,
    check_remote_citations,
    remote_fixture,
)
from tests.e2e.topology import ROTA, TENANT, documents, follow_job, kill, process
from tests.servers import BIN, RedisServer, free_port, redis_server, wait_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _env(remote: RemoteProfile, redis: RedisServer, data_dir: Path) -> dict[str, str]:
    """The settings every process shares, with a data dir of its own."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        **remote.env(data_dir),
        "RAGENT_SERVER_REDIS_URL": redis.url,
        "RAGENT_SERVER_INGEST_QUEUE": "true",
        "RAGENT_SERVER_INGEST_CLAIM_IDLE_S": "3",
        "RAGENT_SERVER_RATE_LIMIT": "600/minute",
        "RAGENT_TOOLS_AUDIT_REDIS_URL": redis.url,
    }


def _ask(url: str, key: str, question: str) -> dict[str, Any]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": question}]
    )
    message = reply.choices[0].message
    return {"answer": message.content or "", **(message.model_extra or {})}


@pytest.mark.timeout(900)  # three processes load the embedder, then two jobs run
def test_two_replicas_and_a_worker_share_everything_but_a_disk(
    remote: RemoteProfile, redis: RedisServer, tmp_path: Path
) -> None:
    store = api_keys.open_key_store(tmp_path, redis.url)
    try:
        _, key = api_keys.create(store, tenant_id=TENANT, user_id="alice")
    finally:
        store.close()  # type: ignore[attr-defined]
    ports = free_port(), free_port()
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    serve = [[str(BIN / "ragent"), "serve", "--port", str(p)] for p in ports]
    worker = [str(BIN / "ragent"), "worker"]
    worker_env = _env(remote, redis, tmp_path / "worker")
    headers = {"Authorization": f"Bearer {key}"}
    with (
        process(serve[0], _env(remote, redis, tmp_path / "a"), tmp_path / "a.log") as a,
        process(serve[1], _env(remote, redis, tmp_path / "b"), tmp_path / "b.log") as b,
        process(worker, worker_env, tmp_path / "worker.log") as first_worker,
    ):
        wait_http(f"{urls[0]}/healthz", a, timeout=240)
        wait_http(f"{urls[1]}/healthz", b, timeout=240)
        with (
            httpx.Client(base_url=urls[0], headers=headers, timeout=60) as via_a,
            httpx.Client(base_url=urls[1], headers=headers, timeout=60) as via_b,
        ):
            # Upload through A; B follows the job and answers from what the worker indexed.
            queued = via_a.post("/v1/ingest", files=[("files", ("rota.md", ROTA.encode()))])
            assert queued.status_code == 202, queued.text
            done = follow_job(
                via_b, queued.json(), lambda j: j["status"] not in {"queued", "running"}, 240
            )
            assert done["status"] == "succeeded" and done["progress"]["documents"] == 1, done
            assert not [p for p in (tmp_path / "a").rglob("uploads/**/*") if p.is_file()]
            rota = _ask(urls[1], key, "When does the billing on-call rota change?")
            assert "every Monday at noon" in rota["answer"], rota
            copy = tmp_path / "rota.md"
            copy.write_text(ROTA, encoding="utf-8")
            check_remote_citations(remote, TENANT, rota["citations"], {"rota.md": copy})

            # Replica A dies: B still serves, and a job queued through B still runs.
            kill(a)
            docs = documents(24)  # two batches: the worker dies between them
            queued = via_b.post("/v1/ingest", files=[("files", d) for d in docs])
            assert queued.status_code == 202, queued.text
            # The worker dies once it has indexed a first batch of the job, before its end.
            running = follow_job(via_b, queued.json(), lambda j: j["progress"]["chunks"] > 0, 240)
            kill(first_worker)
            assert running["status"] == "running", running
        with (
            process(worker, worker_env, tmp_path / "worker.log"),
            httpx.Client(base_url=urls[1], headers=headers, timeout=60) as via_b,
        ):
            job = follow_job(
                via_b, running, lambda j: j["status"] not in {"queued", "running"}, 240
            )
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert job["progress"]["files_done"] == len(docs) and not job["errors"], job
    es = remote.es_chunks(TENANT)
    es_ids, wv_ids = remote.chunk_ids(TENANT)
    assert es_ids == wv_ids and len(es) == len(es_ids)  # each chunk once, in both engines
    assert {c["source"] for c in es} == {"rota.md", *(name for name, _ in docs)}
    assert len(remote.weaviate_chunks(TENANT)) == len(wv_ids)
