"""``kill -9`` of ``ragent serve`` with turns in flight, on each checkpoint backend.

Run from the repository root:

    .venv/bin/python bench/crash.py [--backends sqlite,redis] [--turns 8] [--json]
        [--durability sync|async|exit]

Per backend it ingests samples/ into a scratch data folder, starts a scripted
OpenAI-protocol model in this process (tests/openai_server.py) that streams every
answer slowly (about 5 s), then ``ragent serve``: SQLite checkpoints and the
in-process server state (the embedded default), or Redis for both checkpoints and the
server state (a Redis 8 with RediSearch and RedisJSON, fsync on every write). It sends
``--turns`` concurrent turns, each on a conversation of its own, half streamed and half
JSON, waits until every one has reached the model, kills the server's process group
with SIGKILL, starts it again on the same data and Redis, and reports:

- acknowledged: turns the server had taken (the model had their request);
- found: conversations listed after the restart whose history holds the turn's question
  (the user's message survived);
- reconnect: what ``Last-Event-ID`` on each killed stream returned (status and the code
  of its last error event), and how long it took;
- usable: conversations that took and answered a new message after the restart, and
  the longest wait until one accepted it (409 ``conversation_busy`` while the dead
  process's lock lasts: at most ``LOCK_TTL_S`` on Redis).

Figures are printed; exit code 2 when a check breaks (a question lost under ``sync``,
a thread that takes no message, a reconnect without a clear outcome).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.server.chat_turns import LOCK_TTL_S  # noqa: E402
from tests.openai_server import OpenAIServer, Reply, openai_server  # noqa: E402
from tests.servers import BIN, free_port, redis_server, wait_http  # noqa: E402

MODEL = "crash-model"
SLOW = " ".join(f"word{i}" for i in range(50))  # 250 characters, 4 per 0.08 s: about 5 s
USABLE_WITHIN_S = LOCK_TTL_S + 20


@contextmanager
def serve(env: dict[str, str], root: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``ragent serve`` (its own process group) until the block ends or it is killed."""
    port = free_port()
    log = (root / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "ragent"), "serve", "--no-auth", "--port", str(port)],
        cwd=root, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=300)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


def body(question: str, conversation: str, *, stream: bool) -> dict[str, Any]:
    return {
        "model": "ragent",
        "messages": [{"role": "user", "content": question}],
        "conversation_id": conversation,
        "stream": stream,
    }


def send_turn(url: str, question: str, conversation: str, stream: bool) -> dict[str, Any]:
    """Send one turn; return the last event id a stream saw, and how the request ended."""
    out: dict[str, Any] = {"last_event_id": None, "ended": "completed"}
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            if not stream:
                http.post("/v1/chat/completions", json=body(question, conversation, stream=False))
                return out
            payload = body(question, conversation, stream=True)
            with http.stream("POST", "/v1/chat/completions", json=payload) as response:
                out["last_event_id"] = f"{response.headers.get('x-run-id')}:0"
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        out["last_event_id"] = line[3:].strip()
    except httpx.HTTPError as exc:
        out["ended"] = type(exc).__name__
    return out


def reconnect(url: str, last_event_id: str, conversation: str) -> dict[str, Any]:
    """``Last-Event-ID`` on a killed stream: status, last error code, events, seconds."""
    started = time.monotonic()
    found: dict[str, Any] = {"status": None, "code": None, "events": 0, "done": False}
    payload = body("(reconnect)", conversation, stream=True)
    headers = {"Last-Event-ID": last_event_id}
    with httpx.Client(base_url=url, timeout=120) as http:
        with http.stream("POST", "/v1/chat/completions", json=payload, headers=headers) as r:
            found["status"] = r.status_code
            if r.status_code != 200:
                r.read()
                found["code"] = r.json().get("error", {}).get("code")
            for line in r.iter_lines() if r.status_code == 200 else []:
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                found["events"] += 1
                found["done"] = data == "[DONE]"
                if data.startswith('{"error"'):
                    found["code"] = json.loads(data)["error"]["code"]
    found["seconds"] = time.monotonic() - started
    return found


def next_message(url: str, conversation: str) -> dict[str, Any]:
    """Send a new message until the conversation takes it; how long that took."""
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=120) as http:
        while True:
            r = http.post(
                "/v1/chat/completions", json=body("Go on, please.", conversation, stream=False)
            )
            waited = time.monotonic() - started
            if r.status_code != 409 or waited > USABLE_WITHIN_S:
                break
            time.sleep(0.2)
    answered = r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
    return {"status": r.status_code, "answered": answered, "wait_s": waited, "at": started + waited}


def questions_in(http: httpx.Client, conversation: str) -> list[str]:
    r = http.get(f"/v1/threads/{conversation}")
    if r.status_code != 200:
        return []
    return [m["content"] for m in r.json()["messages"] if m["role"] == "user"]


def reached_model(model: OpenAIServer, question: str) -> bool:
    return any(
        question in str(m.get("content")) for r in model.requests for m in r.get("messages", [])
    )


def run_backend(backend: str, turns: int, durability: str, scratch: Path) -> dict[str, Any]:
    root = scratch / backend
    root.mkdir()
    with ExitStack() as stack:
        model = stack.enter_context(openai_server())
        env = {
            "RAGENT_DATA_DIR": str(root / "data"),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_SERVER_RATE_LIMIT": "100000/minute",
            "RAGENT_CHECKPOINT_DURABILITY": durability,
        }
        if backend == "redis":
            redis = stack.enter_context(redis_server())
            env |= {
                "RAGENT_CHECKPOINT_BACKEND": "redis",
                "RAGENT_CHECKPOINT_REDIS_URL": redis.url,
                "RAGENT_SERVER_REDIS_URL": redis.url,
            }
        subprocess.run(
            [str(BIN / "ragent"), "ingest", str(REPO / "samples"), "--json"],
            env={**os.environ, **env}, capture_output=True, check=True, cwd=root,
        )  # fmt: skip
        plan = [
            (f"crash-{i}", f"Question {i}: how does a WAL checkpoint work?", i % 2 == 0)
            for i in range(turns)
        ]
        model.plan(MODEL, *[Reply(SLOW, piece=4, gap_s=0.08) for _ in plan])
        pool = stack.enter_context(ThreadPoolExecutor(turns))
        with serve(env, root) as (url, proc):
            sent = [pool.submit(send_turn, url, q, c, s) for c, q, s in plan]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if all(reached_model(model, q) for _, q, _ in plan):
                    break
                time.sleep(0.05)
            acknowledged = [c for c, q, _ in plan if reached_model(model, q)]
            time.sleep(0.5)  # a few tokens stream out
            os.killpg(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            proc.wait(10)
        ended = [f.result(60) for f in sent]

        model.plan(MODEL, *[Reply("A fresh answer.") for _ in plan])
        restart = time.monotonic()
        with serve(env, root) as (url, _):
            restarted_s = time.monotonic() - restart
            with httpx.Client(base_url=url, timeout=60) as http:
                listed = {t["id"] for t in http.get("/v1/threads?limit=100").json()["data"]}
                found = [c for c, q, _ in plan if c in listed and q in questions_in(http, c)]
            # New messages first: the wait for the dead process's locks starts at the restart.
            usable = list(pool.map(lambda p: next_message(url, p[0]), plan))
            streams = [(c, e) for (c, _, s), e in zip(plan, ended, strict=True) if s]
            reconnects = list(
                pool.map(lambda ce: reconnect(url, ce[1]["last_event_id"], ce[0]), streams)
            )
    return {
        "backend": backend,
        "durability": durability,
        "turns": turns,
        "acknowledged": len(acknowledged),
        "client_saw_error": sum(e["ended"] != "completed" for e in ended),
        "found": len(found),
        "reconnects": reconnects,
        "usable": sum(u["answered"] for u in usable),
        "longest_wait_s": max(u["wait_s"] for u in usable),
        "longest_wait_since_kill_s": max(u["at"] for u in usable) - killed,
        "restart_s": restarted_s,
    }


def report(result: dict[str, Any]) -> list[str]:
    """Print one backend's figures; return what broke."""
    r = result
    outcomes: dict[str, int] = {}
    for c in r["reconnects"]:
        key = f"{c['status']} {c['code'] or 'no error event'}{'' if c['done'] else ', no [DONE]'}"
        outcomes[key] = outcomes.get(key, 0) + 1
    slowest = max((c["seconds"] for c in r["reconnects"]), default=0.0)
    print(f"\n{r['backend']} (checkpoint.durability: {r['durability']})")
    print(f"  turns sent            {r['turns']} ({r['turns'] - r['turns'] // 2} streamed)")
    print(f"  acknowledged          {r['acknowledged']} (reached the model before the kill)")
    print(f"  clients saw the kill  {r['client_saw_error']}")
    found = f"{r['found']} of {r['acknowledged']}"
    print(f"  questions found       {found} (thread listed, message in its history)")
    print(f"  reconnects            {outcomes} (slowest {slowest:.1f} s)")
    print(f"  usable threads        {r['usable']} of {r['turns']} (answered a new message)")
    print(
        f"  longest wait          {r['longest_wait_s']:.1f} s until a thread took a message "
        f"({r['longest_wait_since_kill_s']:.1f} s after the kill)"
    )
    print(f"  restart               {r['restart_s']:.1f} s until /healthz answered")
    broken = []
    if r["durability"] != "exit" and r["found"] < r["acknowledged"]:
        broken.append(f"{r['backend']}: {r['acknowledged'] - r['found']} questions lost")
    if r["usable"] < r["turns"]:
        broken.append(f"{r['backend']}: {r['turns'] - r['usable']} threads took no new message")
    if any(c["code"] is None or not c["done"] for c in r["reconnects"] if c["status"] == 200):
        broken.append(f"{r['backend']}: a reconnect ended without an outcome")
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--durability", default="sync", choices=["sync", "async", "exit"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="ragent-bench-crash-") as tmp:
        for backend in args.backends.split(","):
            results.append(run_backend(backend, args.turns, args.durability, Path(tmp)))
    if args.json:
        print(json.dumps(results))
        return 0
    broken = [b for r in results for b in report(r)]
    for line in broken:
        print(f"BROKEN: {line}")
    return 2 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
