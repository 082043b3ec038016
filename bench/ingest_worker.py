"""Ingestion throughput of ``ragent worker``: chunks/s per worker, off the Redis queue.

Run from the repository root:

    .venv/bin/python bench/ingest_worker.py [--docs 64] [--jobs 4] [--workers 1] [--json]

It starts a throwaway Redis, queues ``--jobs`` jobs of synthetic Markdown documents (six
paragraphs of 120 words each) as ``POST /v1/ingest`` would (:class:`QueuedJobs`), starts
``--workers`` ``ragent worker`` processes on the embedded engines with the local
embedder, and times from the first job seen running (the workers' start-up and model
load excluded) to the last one done. It prints chunks/s in all and per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.server.ingestion.queue import IngestQueue  # noqa: E402
from app.server.ingestion.queued import QueuedJobs  # noqa: E402
from app.server.ingestion.uploads import Author  # noqa: E402
from app.server.shared_state import RedisState  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.servers import BIN, redis_server  # noqa: E402


def documents(count: int) -> list[tuple[str, bytes]]:
    """Synthetic Markdown documents, distinct enough that none is a near-duplicate."""
    rng = random.Random(27)
    words = [f"w{i:04d}" for i in range(4000)]
    return [
        (
            f"doc-{i:04d}.md",
            (
                f"# Document {i}\n\n"
                + "\n\n".join(" ".join(rng.choices(words, k=120)) + "." for _ in range(6))
            ).encode(),
        )
        for i in range(count)
    ]


async def submit(url: str, batches: list[list[tuple[str, bytes]]]) -> list[str]:
    """Queue one job per batch; returns the job ids."""
    settings = load_settings()
    state = RedisState(url)
    jobs = QueuedJobs(settings, state, IngestQueue(url, claim_idle_s=60, max_attempts=3))
    author = Author.of("bench/user", ())
    ids = []
    for batch in batches:
        kept = [await jobs.keep("bench", n, d, author=author) for n, d in batch]
        record = await jobs.submit(
            owner="bench/user", tenant="bench", uploads=kept, urls=[], acl=[], namespace=None
        )
        ids.append(str(record["id"]))
    await jobs.close()
    await state.close()
    return ids


async def records(url: str, ids: list[str]) -> list[dict[str, Any]]:
    """The job records as ``GET /v1/jobs/{id}`` reads them."""
    state = RedisState(url)
    try:
        return [json.loads(await state.get(f"job:{i}") or "{}") for i in ids]
    finally:
        await state.close()


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=64, help="documents in all")
    parser.add_argument("--jobs", type=int, default=4, help="jobs they are queued in")
    parser.add_argument("--workers", type=int, default=1, help="ragent worker processes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    docs = documents(args.docs)
    batches = [docs[i :: args.jobs] for i in range(args.jobs)]
    with tempfile.TemporaryDirectory(prefix="ragent-bench-") as tmp, redis_server() as redis:
        root = Path(tmp)
        for key in [k for k in os.environ if k.startswith("RAGENT_")]:
            del os.environ[key]
        os.environ["RAGENT_DATA_DIR"] = str(root / "api")
        ids = asyncio.run(submit(redis.url, batches))
        procs = []
        for n in range(args.workers):
            env = {
                **os.environ,
                "RAGENT_DATA_DIR": str(root / f"worker-{n}"),
                "RAGENT_SERVER_REDIS_URL": redis.url,
                "RAGENT_SERVER_INGEST_QUEUE": "true",
            }
            procs.append(
                subprocess.Popen(
                    [str(BIN / "ragent"), "worker"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        started: float | None = None
        try:
            while True:
                jobs = asyncio.run(records(redis.url, ids))
                if started is None and any(j.get("status") != "queued" for j in jobs):
                    started = time.monotonic()
                if all(j.get("status") in {"succeeded", "failed"} for j in jobs):
                    break
                time.sleep(0.1)
            ended = time.monotonic()
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
    assert started is not None
    seconds = ended - started
    chunks = sum(j["progress"]["chunks"] for j in jobs)
    figures = {
        "documents": args.docs,
        "jobs": args.jobs,
        "workers": args.workers,
        "failed_jobs": sum(j["status"] == "failed" for j in jobs),
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2),
        "chunks_per_s_per_worker": round(chunks / seconds / args.workers, 2),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures))  # noqa: T201
    else:
        for name, value in figures.items():
            print(f"{name:>24}: {value}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
