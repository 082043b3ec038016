"""Hostile input against a real ``ragent serve``: what each class costs, and /healthz meanwhile.

Run from the repository root:

    .venv/bin/python bench/hostile.py [--json]

It starts ``ragent serve`` (default settings, embedded stores, a scratch data folder) and
sends one input of each hostile class, one after the other: decompression bombs of every
kind the loaders read (zip, PDF FlateDecode, a PDF bomb the checks cannot see, which only
the parser process's memory cap stops), XML entities, deep nesting, corrupt and mistyped
files, an upload over ``server.max_upload_bytes``, and chat bodies that are not valid
Unicode, too large or nested too deep. Uploads are followed to the end of their job.

Printed per class: the HTTP status (for an upload, 202 and the job's verdict), the peak RSS
of the server process and of its parser process while the class ran, its wall time (from
the request to the end of its job; payloads are made before), and the slowest /healthz
reply meanwhile. A process of its own (so that it shares no GIL with the sender) polls
``/healthz`` every 20 ms throughout; its p50/p99/max latency closes the report. Goal:
/healthz under 100 ms at all times, and the server's RSS flat; a missed goal is reported,
never asserted. Exit code 2 when something
breaks (the server dies, a request errors).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import hostile_files as hostile  # noqa: E402
from tests.servers import BIN, free_port, wait_http  # noqa: E402

GOAL_HEALTH_MS = 100.0
MIB = 1 << 20


@dataclass
class Case:
    name: str
    payload: Callable[[], bytes]
    """Made before the clock starts."""
    send: Callable[[httpx.Client, bytes], tuple[str, str]]
    """Sends the payload; returns (status, verdict)."""


def poll_health(url: str, stop: EventType, out: Connection) -> None:
    """In a process of its own (no GIL shared with the sender): ``(monotonic, ms)`` samples."""
    samples: list[tuple[float, float]] = []
    failures: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = client.get("/healthz").status_code
                if status != 200:
                    failures.append(f"HTTP {status}")
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
            samples.append((started, 1000 * (time.monotonic() - started)))
            time.sleep(0.02)
    out.send((samples, failures))


@dataclass
class Watch:
    """Samples the server's and its children's RSS in a thread; /healthz in a process."""

    url: str
    pid: int
    health: list[tuple[float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_server: int = 0
    peak_parser: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.peak_server = self.peak_parser = 0

    def poll_memory(self) -> None:
        server = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                self.peak_server = max(self.peak_server, server.memory_info().rss)
                rss = 0
                for child in server.children(recursive=True):
                    try:
                        rss += child.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak_parser = max(self.peak_parser, rss)
            except psutil.Error:
                pass
            time.sleep(0.01)

    def slowest_ms(self, start: float, end: float) -> float | None:
        """The slowest reply to a /healthz sent in ``[start, end]``; None: none was sent."""
        return max((ms for t, ms in self.health if start <= t <= end), default=None)

    @contextmanager
    def running(self) -> Iterator[Watch]:
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        receiver, sender = context.Pipe(duplex=False)
        poller = context.Process(target=poll_health, args=(self.url, stop, sender), daemon=True)
        poller.start()
        memory = threading.Thread(target=self.poll_memory, daemon=True)
        memory.start()
        try:
            time.sleep(2)  # the poller's start-up
            yield self
        finally:
            self.stop.set()
            stop.set()
            self.health, self.failures = receiver.recv()
            poller.join(35)
            memory.join(5)


def upload(name: str) -> Callable[[httpx.Client, bytes], tuple[str, str]]:
    def send(client: httpx.Client, payload: bytes) -> tuple[str, str]:
        response = client.post("/v1/ingest", files=[("files", (name, payload))])
        if response.status_code != 202:
            return str(response.status_code), _error(response)
        job = response.json()
        deadline = time.monotonic() + 600
        while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
            time.sleep(0.1)
            job = client.get(f"/v1/jobs/{job['id']}").json()
        errors = [e["reason"] for e in job.get("errors", [])]
        verdict = f"indexed {job['progress']['documents']}" if not errors else errors[0]
        return f"202 -> {job['status']}", verdict

    return send


def chat() -> Callable[[httpx.Client, bytes], tuple[str, str]]:
    def send(client: httpx.Client, payload: bytes) -> tuple[str, str]:
        headers = {"Content-Type": "application/json"}
        response = client.post("/v1/chat/completions", content=payload, headers=headers)
        return str(response.status_code), _error(response)

    return send


def _error(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:80]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code') or error.get('type')}: {error.get('message', '')}"
    return json.dumps(payload)[:80]


def _message(content: Any) -> bytes:
    body = {"model": "ragent", "messages": [{"role": "user", "content": content}]}
    return json.dumps(body).encode()


def cases() -> list[Case]:
    def up(label: str, name: str, payload: Callable[[], bytes]) -> Case:
        return Case(label, payload, upload(name))

    def ask(label: str, payload: Callable[[], bytes]) -> Case:
        return Case(label, payload, chat())

    nested = b'{"model": "ragent", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return [
        up("docx zip bomb (100 MB inflated)", "bomb.docx", hostile.docx_bomb),
        up("docx billion laughs", "laughs.docx", hostile.docx_billion_laughs),
        up("docx external entity", "xxe.docx", hostile.docx_external_entity),
        up("pdf FlateDecode bomb (1 GiB)", "bomb.pdf", hostile.pdf_bomb),
        up(
            "pdf bomb under ASCIIHex (4 GiB)",
            "hidden.pdf",
            lambda: hostile.pdf_hidden_bomb(4 << 30),
        ),
        up("html nested 100k deep", "deep.html", hostile.deep_html),
        up("markdown list nested 600 deep", "deep.md", lambda: hostile.deep_markdown_list(600)),
        up("markdown quote nested 100k", "quote.md", hostile.deep_markdown_quote),
        up("corrupt pdf", "broken.pdf", lambda: b"%PDF-1.7\n" + os.urandom(50_000)),
        up("truncated docx", "cut.docx", lambda: hostile.docx_text("cut")[:4000]),
        up("binary as .txt", "blob.txt", lambda: os.urandom(100_000)),
        up("invalid UTF-8 .txt", "latin.txt", lambda: b"caf\xe9 \xff\xfe" * 1000),
        up("upload over max_file_bytes", "big.txt", lambda: b"word " * (12 * MIB)),
        up("upload over max_upload_bytes", "huge.txt", lambda: b"word " * (21 * MIB)),
        ask("chat: lone surrogate", lambda: _message("hello \ud800 there")),
        ask("chat: invalid UTF-8 body", lambda: _message("hello").replace(b"o", b"\xff")),
        ask("chat: JSON body of 2 MB", lambda: _message("word " * 400_000)),
        ask("chat: JSON nested 100k deep", lambda: nested),
    ]


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, str, int]]:
    env = {
        **os.environ,
        "RAGENT_DATA_DIR": str(root / "data"),
        "RAGENT_SERVER_RATE_LIMIT": "1000000/minute",
    }
    made = subprocess.run(
        [str(BIN / "ragent"), "keys", "create", "--tenant", "default", "--user", "bench"],
        env=env, capture_output=True, text=True, check=True, cwd=root,
    )  # fmt: skip
    port = free_port()
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "ragent"), "serve", "--port", str(port)],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=600)
            yield f"http://127.0.0.1:{port}", made.stdout.strip(), proc.pid
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode not in (0, -signal.SIGTERM):
        print(log.read_text()[-3000:], file=sys.stderr)


def show(row: dict[str, Any]) -> None:
    slowest = "-" if row["healthz_max_ms"] is None else f"{row['healthz_max_ms']:.1f}"
    print(
        f"{row['class']:34} {row['status']:18} server {row['server_peak_rss_mb']:>5} MB  "
        f"parser {row['parser_peak_rss_mb']:>5} MB {row['seconds']:>6.2f} s  "
        f"healthz max {slowest:>6} ms  {row['verdict']}",
        flush=True,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ragent-bench-hostile-") as tmp:
        root = Path(tmp)
        with serve(root) as (url, key, pid):
            watch = Watch(url, pid)
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
                # The parser process's start is not a hostile class's cost.
                upload("warm.md")(client, b"# Warm\n\nThe parser process starts here.\n")
                with watch.running():
                    spans = []
                    for case in cases():
                        payload = case.payload()
                        watch.reset()
                        time.sleep(0.2)
                        started = time.monotonic()
                        try:
                            status, verdict = case.send(client, payload)
                        except httpx.HTTPError as exc:
                            status, verdict = "error", type(exc).__name__
                        ended = time.monotonic()
                        time.sleep(0.1)
                        spans.append((started, ended))
                        rows.append(
                            {
                                "class": case.name,
                                "status": status,
                                "verdict": verdict[:90],
                                "server_peak_rss_mb": round(watch.peak_server / MIB),
                                "parser_peak_rss_mb": round(watch.peak_parser / MIB),
                                "seconds": round(ended - started, 2),
                            }
                        )
                for row, (start, end) in zip(rows, spans, strict=True):
                    slowest = watch.slowest_ms(start, end)
                    row["healthz_max_ms"] = None if slowest is None else round(slowest, 1)
                    if not args.json:
                        show(row)
            alive = psutil.pid_exists(pid)
    health = [ms for _, ms in watch.health]
    summary = {
        "healthz_samples": len(health),
        "healthz_p50_ms": round(statistics.median(health), 1),
        "healthz_p99_ms": round(percentile(health, 0.99), 1),
        "healthz_max_ms": round(max(health), 1),
        "healthz_failures": len(watch.failures),
        "server_alive": alive,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps({"classes": rows, "summary": summary}, indent=2))
    else:
        print(
            f"\n/healthz over the run: {summary['healthz_samples']} replies, "
            f"p50 {summary['healthz_p50_ms']} ms, p99 {summary['healthz_p99_ms']} ms, "
            f"max {summary['healthz_max_ms']} ms, {summary['healthz_failures']} failures "
            f"(load average {summary['load_average_1min']} on {summary['cpus']} CPUs)"
        )
        if summary["healthz_max_ms"] >= GOAL_HEALTH_MS:
            print(f"goal missed: /healthz max >= {GOAL_HEALTH_MS:.0f} ms")
    broken = watch.failures or not alive or any(r["status"] == "error" for r in rows)
    return 2 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
