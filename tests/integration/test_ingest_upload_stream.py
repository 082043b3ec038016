"""Uploads reach the ingestion queue in pieces, on a real Redis, and never half-written.

``POST /v1/ingest`` with ``server.ingest_queue`` appends each upload to Redis 1 MiB at a
time under a partial key, renamed into place once complete: a real ``ragent serve`` and
a real ``ragent worker`` ingest a multi-piece upload; a file over the size limit, one whose
reader fails half-way and one whose request is cancelled leave nothing in Redis.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib

from app.server import api_keys
from app.server.ingestion.queue import IngestQueue
from app.server.ingestion.queued import QueuedJobs
from app.server.ingestion.upload_checks import FileTooLarge, pieces
from app.server.ingestion.uploads import PIECE_BYTES, Author
from app.server.shared_state import RedisState
from app.settings import load_settings
from tests.integration.conftest import clean_env
from tests.servers import BIN, REPO, RedisServer, free_port, redis_server, wait_http

pytestmark = pytest.mark.integration

AUTHOR = Author.of("t/u", ())
# A short document padded with spaces to three and a half pieces (plain text: the
# Markdown parser takes minutes over megabytes of blank lines).
DOCUMENT = b"# Zephyr rota\n\n" + b"\n\n".join(
    f"Team {i} takes the zephyr rota in week {i}, on Mondays, for a fortnight.".encode()
    for i in range(40)
)
PADDED = DOCUMENT + b"\n" + b" " * (3 * PIECE_BYTES + PIECE_BYTES // 2) + b"\n"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _upload_keys(url: str) -> list[bytes]:
    client = redis_lib.Redis.from_url(url)
    try:
        found = [
            *client.scan_iter("ragent:ingest:file:*"),
            *client.scan_iter("ragent:ingest:partial:*"),
        ]
        return sorted(found)
    finally:
        client.close()


def _files_and_partials(url: str) -> tuple[list[bytes], list[bytes]]:
    keys = _upload_keys(url)
    files = [k for k in keys if k.startswith(b"ragent:ingest:file:")]
    return files, [k for k in keys if k.startswith(b"ragent:ingest:partial:")]


def _appends(url: str) -> int:
    client = redis_lib.Redis.from_url(url)
    try:
        return int(client.info("commandstats").get("cmdstat_append", {}).get("calls", 0))
    finally:
        client.close()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # a file, not a pipe: a chatty process never stalls on it
        return subprocess.Popen(
            [str(BIN / "ragent"), *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _until_done(http: httpx.Client, job_id: str, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not end:\n{log.read_text()[-3000:]}")


def test_a_streamed_upload_is_ingested_and_an_oversized_one_leaves_nothing(
    redis: RedisServer, tmp_path: Path
) -> None:
    api_data, worker_data = tmp_path / "api", tmp_path / "worker"
    common = {
        "RAGENT_SERVER_REDIS_URL": redis.url,
        "RAGENT_SERVER_INGEST_QUEUE": "true",
        "RAGENT_INGEST_MAX_FILE_BYTES": str(4 * PIECE_BYTES),
    }
    store = api_keys.open_key_store(api_data, redis.url)
    try:
        _, key = api_keys.create(store, tenant_id="t", user_id="u", scopes=api_keys.SCOPES)
    finally:
        store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env({**common, "RAGENT_DATA_DIR": str(api_data)})
    headers = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "processes.log"
    api = _start(["serve", "--port", str(port)], env, log)
    worker: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"{url}/healthz", api)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            appends = _appends(redis.url)
            sent = http.post("/v1/ingest", files={"files": ("rota.txt", PADDED, "text/plain")})
            assert sent.status_code == 202, sent.text
            # Queued, no worker yet: one whole file in Redis, written in pieces; no partial.
            files, partials = _files_and_partials(redis.url)
            assert len(files) == 1 and partials == []
            assert redis_lib.Redis.from_url(redis.url).strlen(files[0]) == len(PADDED)
            assert _appends(redis.url) - appends == 4  # 3.5 MiB in 1 MiB pieces

            big = PADDED + b" " * PIECE_BYTES
            refused = http.post("/v1/ingest", files={"files": ("big.txt", big, "text/plain")})
            assert refused.status_code == 202, refused.text
            assert _files_and_partials(redis.url) == (files, [])  # nothing of it in Redis

            worker = _start(
                ["worker"], clean_env({**common, "RAGENT_DATA_DIR": str(worker_data)}), log
            )
            job = _until_done(http, sent.json()["id"], log)
            big_job = _until_done(http, refused.json()["id"], log)
    finally:
        for proc in (p for p in (worker, api) if p is not None):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    assert job["status"] == "succeeded" and job["progress"]["chunks"] >= 1, job["errors"]
    assert big_job["errors"] == [
        {"source": "big.txt", "reason": f"file too large ({len(big)} bytes > {4 * PIECE_BYTES})"}
    ]
    assert _files_and_partials(redis.url) == ([], [])  # the worker removed the file
    assert not [p for p in (worker_data / "uploads").rglob("*") if p.is_file()]


class _Unsized:
    """A part whose size was not sent: read in pieces, like Starlette's UploadFile."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data = io.BytesIO(data)
        self.fail_after = fail_after
        self.reads = 0

    async def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.reads >= self.fail_after:
            raise ConnectionResetError("the client went away")
        self.reads += 1
        return self.data.read(size)


async def _keep(url: str, source: Any) -> Any:
    queue = IngestQueue(url, claim_idle_s=5, max_attempts=3)
    jobs = QueuedJobs(load_settings(), RedisState(url), queue)
    try:
        return await jobs.keep("t", "a.md", pieces(source, 4 * PIECE_BYTES), author=AUTHOR)
    finally:
        await jobs.close()
        await jobs.state.close()


def test_a_file_past_the_limit_while_streamed_leaves_nothing(redis: RedisServer) -> None:
    source = _Unsized(DOCUMENT + b"\n" * (5 * PIECE_BYTES))
    with pytest.raises(FileTooLarge, match=f"more than {4 * PIECE_BYTES} bytes"):
        asyncio.run(_keep(redis.url, source))
    assert source.reads == 5  # stopped at the first piece past the limit, not at the end
    assert _upload_keys(redis.url) == []


def test_an_upload_that_fails_half_way_leaves_nothing(redis: RedisServer) -> None:
    with pytest.raises(ConnectionResetError):
        asyncio.run(_keep(redis.url, _Unsized(PADDED, fail_after=2)))
    assert _upload_keys(redis.url) == []


async def _cancelled(url: str) -> tuple[list[bytes], list[bytes], int]:
    queue = IngestQueue(url, claim_idle_s=5, max_attempts=3)
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield DOCUMENT
        started.set()
        await asyncio.sleep(3600)  # the client stops sending
        yield DOCUMENT

    task = asyncio.create_task(queue.put_file(stalled(), "a.md", "a.md", ttl_s=600))
    await started.wait()
    await asyncio.sleep(0.2)
    files, partials = _files_and_partials(url)
    ttl = int(redis_lib.Redis.from_url(url).ttl(partials[0])) if partials else -1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await queue.close()
    return files, partials, ttl


def test_a_cancelled_upload_is_never_visible_and_is_removed(redis: RedisServer) -> None:
    files, partials, ttl = asyncio.run(_cancelled(redis.url))
    # In flight: only a partial key, which outlives a killed writer by a minute at most.
    assert files == [] and len(partials) == 1 and 0 < ttl <= 60
    assert _upload_keys(redis.url) == []
