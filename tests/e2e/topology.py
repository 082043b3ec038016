"""Helpers of the production-topology tests: ragent processes, jobs, and an upload.

Used by tests/e2e/test_production_topology.py (the offline answerer) and by
tests/realmodel/test_production_topology.py (the compose settings and a local model).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROTA = "# Rota\n\nThe on-call rota for the billing service changes every Monday at noon.\n"
TENANT = "initech"


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A ragent process with its output in ``log``; stopped (if still alive) at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args,
            cwd=log.parent,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every process of its group (a server's workers)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def follow_job(
    client: httpx.Client,
    job: dict[str, Any],
    until: Callable[[dict[str, Any]], bool],
    timeout: float,
    every_s: float = 0.2,
) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/<id>`` until ``until(job)``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not until(job):
        assert time.monotonic() < deadline, job
        time.sleep(every_s)
        reply = client.get(f"/v1/jobs/{job['id']}")
        assert reply.status_code == 200, reply.text
        job = reply.json()
    return job


def documents(count: int) -> list[tuple[str, bytes]]:
    """``count`` Markdown files of random words, six paragraphs each (the same every run)."""
    rng = random.Random(27)
    words = [f"w{i:04d}" for i in range(4000)]
    return [
        (
            f"doc-{i:03d}.md",
            (
                f"# Document {i}\n\n"
                + "\n\n".join(" ".join(rng.choices(words, k=120)) + "." for _ in range(6))
            ).encode(),
        )
        for i in range(count)
    ]
