"""Peak RSS of the API process while large uploads go to the ingestion queue.

Run from the repository root:

    .venv/bin/python bench/upload_rss.py [--uploads 4] [--mb 50] [--repo DIR] [--json]

It starts a throwaway Redis and one ``ragent serve`` (one process) with
``server.ingest_queue`` on and no worker, then sends ``--uploads`` concurrent
``POST /v1/ingest`` of ``--mb`` MB each. It samples the server's RSS every 10 ms from
``/proc`` and prints the RSS before, the peak during, and the peak rise. ``--repo`` runs
the ``app`` package of another checkout (e.g. ``git worktree`` of an older commit) with
this virtual environment, to compare before and after a change.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.server import api_keys  # noqa: E402
from tests.servers import free_port, redis_server, wait_http  # noqa: E402


def rss_mb(pid: int) -> float:
    """The resident set size of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Samples a process's RSS until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.01)


def measure(repo: Path, uploads: int, size: int) -> dict[str, Any]:
    """Start Redis and ``ragent serve`` from ``repo``, upload, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="upload-rss-") as tmp, redis_server() as redis:
        data = Path(tmp) / "data"
        store = api_keys.open_key_store(data, redis.url)
        try:
            _, key = api_keys.create(store, tenant_id="t", user_id="u", scopes=api_keys.SCOPES)
        finally:
            store.close()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
        env |= {
            "PYTHONPATH": str(repo),
            "RAGENT_DATA_DIR": str(data),
            "RAGENT_SERVER_REDIS_URL": redis.url,
            "RAGENT_SERVER_INGEST_QUEUE": "true",
            "RAGENT_INGEST_MAX_FILE_BYTES": str(size),
            "RAGENT_SERVER_MAX_UPLOAD_BYTES": str(size + 1_000_000),
        }
        code = "from app.cli.main import main; main()"
        args = [sys.executable, "-c", code, "serve", "--port", str(port)]
        proc = subprocess.Popen(
            args, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            body = b"# Large\n\n" + b"x" * (size - 9)
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
                warm = http.post("/v1/ingest", headers=headers, files={"files": ("w.md", b"# W")})
                assert warm.status_code == 202, warm.text
            time.sleep(1.0)
            before = rss_mb(proc.pid)
            sampler = Sampler(proc.pid)
            sampler.start()
            statuses: list[int] = []

            def send(i: int) -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
                    files = {"files": (f"big-{i}.md", body, "text/markdown")}
                    statuses.append(
                        http.post("/v1/ingest", headers=headers, files=files).status_code
                    )

            started = time.monotonic()
            threads = [threading.Thread(target=send, args=(i,)) for i in range(uploads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.monotonic() - started
            time.sleep(0.2)
            sampler.stop.set()
            sampler.join()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return {
        "uploads": uploads,
        "mb_each": size / 1e6,
        "statuses": sorted(statuses),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(sampler.peak, 1),
        "rss_rise_mib": round(sampler.peak - before, 1),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    """Parse the options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.repo.resolve(), args.uploads, args.mb * 1_000_000)
    if args.json:
        print(json.dumps(figures))  # noqa: T201
        return
    print(  # noqa: T201
        f"{figures['uploads']} concurrent uploads of {figures['mb_each']:.0f} MB "
        f"(statuses {figures['statuses']}, {figures['seconds']} s): API RSS "
        f"{figures['rss_before_mib']} MiB before, peak {figures['rss_peak_mib']} MiB, "
        f"rise {figures['rss_rise_mib']} MiB"
    )


if __name__ == "__main__":
    main()
