"""The ingestion queue on a real Redis, and ``ragent worker`` processes that run it.

A job is handed to one worker at a time; one whose worker stops renewing its hold (it
died) is handed to the next worker with its delivery counted; past the limit it goes to
the dead-letter stream and its record fails. A worker killed with SIGKILL mid-job loses
nothing: a restarted worker runs the job again and the index holds each chunk once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from app.server.ingestion.queue import DEAD, STREAM, IngestQueue
from app.server.ingestion.queued import QueuedJobs
from app.server.ingestion.uploads import Author
from app.server.shared_state import RedisState
from app.settings import load_settings
from tests.integration.conftest import clean_env
from tests.servers import BIN, REPO, RedisServer, redis_server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _job() -> dict[str, Any]:
    return {"record": {"id": "job_x"}, "tenant": "t", "acl": [], "urls": [], "files": []}


async def _queue_round(url: str) -> None:
    queue = IngestQueue(url, claim_idle_s=1, max_attempts=3)
    stored = await queue.put_file(b"hello", "a.txt", "a.txt", ttl_s=60)
    job = _job()
    job["files"] = [[stored.key, stored.source, stored.name]]
    await queue.enqueue(job)

    first = await queue.next("worker-a", block_s=0.1)
    assert first is not None and first.attempt == 1
    assert await queue.get_file(first.files[0]) == b"hello"
    # Held by worker-a: nobody else gets it, new or abandoned.
    assert await queue.next("worker-b", block_s=0.1) is None
    # worker-a renews while it works: still nobody else gets it after the claim time.
    for _ in range(3):
        await asyncio.sleep(0.5)
        assert await queue.renew(first, "worker-a")
    assert await queue.next("worker-b", block_s=0.1) is None

    # worker-a dies (stops renewing): worker-b gets the same job, a second delivery.
    await asyncio.sleep(1.2)
    second = await queue.next("worker-b", block_s=0.1)
    assert second is not None and second.message_id == first.message_id
    assert second.attempt == 2 and second.job == first.job
    # worker-a's hold is gone: it cannot renew a job it lost.
    await queue.done(second)
    assert await queue.get_file(first.files[0]) is None
    assert await queue.depth() == (0, 0)
    assert await queue.next("worker-a", block_s=0.1) is None
    await queue.close()


def test_a_job_goes_to_one_worker_and_an_abandoned_one_to_the_next(redis: RedisServer) -> None:
    asyncio.run(_queue_round(redis.url))


async def _dead_letter(url: str, data_dir: Path) -> dict[str, Any]:
    from app.resources import build_resources
    from app.server.ingestion.consumer import IngestWorker

    settings = load_settings()
    state = RedisState(url)
    queue = IngestQueue(url, claim_idle_s=1, max_attempts=2)
    jobs = QueuedJobs(settings, state, queue)
    author = Author.of("t/u", ())
    kept = await jobs.keep("t", "a.txt", b"some text to index", author=author)
    record = await jobs.submit(
        owner="t/u", tenant="t", uploads=[kept], urls=[], acl=[], namespace=None
    )
    worker = IngestWorker(settings, build_resources(settings), state, queue, consumer="w")
    # Two workers take the job and die on it (they never renew nor finish).
    for consumer in ("dies-1", "dies-2"):
        taken = await queue.next(consumer, block_s=0.1)
        assert taken is not None
        await asyncio.sleep(1.1)
    third = await queue.next("w", block_s=0.1)
    assert third is not None and third.attempt == 3
    await worker.handle(third)
    await worker.close()
    job = await jobs.get("t/u", record["id"])
    assert job is not None
    redis_client = queue._r
    dead = await redis_client.xrange(DEAD)
    pending = await redis_client.xlen(STREAM)
    file_left = await queue.get_file(kept)
    await jobs.close()
    await state.close()
    return {"job": job, "dead": dead, "pending": pending, "file_left": file_left}


def test_a_job_past_its_attempts_is_dead_lettered_and_fails(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path))
    out = asyncio.run(_dead_letter(redis.url, tmp_path))
    job = out["job"]
    assert job["status"] == "failed" and job["attempts"] == 3
    assert "no worker finished it in 2 attempts" in job["errors"][-1]["reason"]
    assert out["pending"] == 0 and out["file_left"] is None
    assert len(out["dead"]) == 1
    entry = out["dead"][0][1]
    assert json.loads(entry[b"job"])["record"]["id"] == job["id"]
    assert b"files" not in entry[b"job"] or json.loads(entry[b"job"]).get("files") is None


# -- a real ``ragent worker`` killed mid-job --------------------------------------------

WORDS = [f"w{i:04d}" for i in range(4000)]


def _documents(count: int) -> list[tuple[str, bytes]]:
    rng = random.Random(27)
    docs = []
    for i in range(count):
        paragraphs = [" ".join(rng.choices(WORDS, k=120)) + "." for _ in range(6)]
        docs.append((f"doc-{i:03d}.md", (f"# Document {i}\n\n" + "\n\n".join(paragraphs)).encode()))
    return docs


async def _submit(url: str, data_dir: Path, docs: list[tuple[str, bytes]]) -> str:
    settings = load_settings()
    state = RedisState(url)
    queue = IngestQueue(url, claim_idle_s=2, max_attempts=3)
    jobs = QueuedJobs(settings, state, queue)
    author = Author.of("t/u", ())
    kept = [await jobs.keep("t", name, data, author=author) for name, data in docs]
    record = await jobs.submit(
        owner="t/u", tenant="t", uploads=kept, urls=[], acl=[], namespace=None
    )
    await jobs.close()
    await state.close()
    return str(record["id"])


async def _read_job(url: str, job_id: str) -> dict[str, Any]:
    state = RedisState(url)
    try:
        raw = await state.get(f"job:{job_id}")
    finally:
        await state.close()
    assert raw is not None
    return dict(json.loads(raw))


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(BIN / "ragent"), "worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(
    url: str, job_id: str, done: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = asyncio.run(_read_job(url, job_id))
        if done(job):
            return job
        if proc.poll() is not None:
            raise AssertionError(f"worker exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(
        f"timed out; job {asyncio.run(_read_job(url, job_id))}\n{log.read_text()[-3000:]}"
    )


def test_a_worker_killed_mid_job_is_retried_without_duplicates(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAGENT_DATA_DIR", str(data_dir))
    docs = _documents(32)
    job_id = asyncio.run(_submit(redis.url, data_dir, docs))
    env = clean_env(
        {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_SERVER_REDIS_URL": redis.url,
            "RAGENT_SERVER_INGEST_QUEUE": "true",
            "RAGENT_SERVER_INGEST_CLAIM_IDLE_S": "2",
        }
    )
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    try:
        # Killed once the job has indexed a first batch and before it ends.
        _wait(redis.url, job_id, lambda j: j["progress"]["chunks"] > 0, 180, first, log)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    killed_at = asyncio.run(_read_job(redis.url, job_id))
    assert killed_at["status"] == "running", killed_at  # it really was mid-job
    second = _worker(env, log)
    try:
        job = _wait(
            redis.url, job_id, lambda j: j["status"] in {"succeeded", "failed"}, 240, second, log
        )
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert job["progress"]["files_done"] == len(docs)
    # Every document once, each chunk once; no upload left on the worker's disk.
    with closing(sqlite3.connect(f"file:{data_dir / 'index.sqlite'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT doc_id, text FROM chunks").fetchall()
        sources = {r[0] for r in db.execute("SELECT DISTINCT source FROM chunks")}
    assert len(rows) == len(set(rows))
    assert sources == {name for name, _ in docs}
    assert not [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]
    assert asyncio.run(_depth(redis.url)) == (0, 0)


async def _depth(url: str) -> tuple[int, int]:
    queue = IngestQueue(url, claim_idle_s=2, max_attempts=3)
    try:
        return await queue.depth()
    finally:
        await queue.close()


async def _failing_engine(url: str) -> list[dict[str, Any]]:
    from app.resources import build_resources
    from app.server.ingestion.consumer import IngestWorker

    settings = load_settings()
    state = RedisState(url)
    queue = IngestQueue(url, claim_idle_s=1, max_attempts=2)
    jobs = QueuedJobs(settings, state, queue)
    kept = await jobs.keep(
        "t", "a.md", b"# A\n\nsome text to index here", author=Author.of("t/u", ())
    )
    record = await jobs.submit(
        owner="t/u", tenant="t", uploads=[kept], urls=[], acl=[], namespace=None
    )
    resources = build_resources(settings)
    resources.writer.close()  # type: ignore[attr-defined]  # every write now fails
    worker = IngestWorker(settings, resources, state, queue, consumer="w")
    seen = []
    for _ in range(2):
        delivery = await queue.next("w", block_s=0.1)
        while delivery is None:  # the failed attempt is retried after the claim time
            await asyncio.sleep(0.2)
            delivery = await queue.next("w", block_s=0.1)
        await worker.handle(delivery)
        job = await jobs.get("t/u", record["id"])
        assert job is not None
        seen.append({**job, "pending": await queue.depth(), "file": await queue.get_file(kept)})
    await worker.close()
    await jobs.close()
    await state.close()
    return seen


def test_a_job_that_raises_is_retried_then_dead_lettered(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path))
    first, second = asyncio.run(_failing_engine(redis.url))
    # Attempt 1 failed: the job waits for a retry, its upload still in Redis.
    assert first["status"] == "queued" and first["attempts"] == 1, first
    assert "attempt 1 failed" in first["errors"][-1]["reason"]
    assert first["pending"] == (1, 0) and first["file"] is not None
    # Attempt 2 (the last) failed: the job fails, moves to the dead letters, upload gone.
    assert second["status"] == "failed" and second["attempts"] == 2, second
    assert [e["reason"] for e in second["errors"]][-1].startswith("job failed: ")
    assert second["pending"] == (0, 1) and second["file"] is None
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
