"""Load test of the HTTP API, next to the same graph behind ``langgraph dev``'s runs API.

Run from the repository root:

    .venv/bin/python bench/api.py [--clients 1,8,32] [--seconds 10] [--workers 1]
        [--no-langgraph] [--json]

It ingests samples/ into a scratch data folder, starts tests/openai_server.py in its own
process (an OpenAI-protocol model that answers at once), then ``ragent serve`` with an
API key, SQLite checkpoints and the embedded indexes (with ``--workers`` above 1, that
many processes and a Redis for their shared state), and drives
``POST /v1/chat/completions`` from one asyncio process (aiohttp: the load generator shares
the cores, and httpx spent several times its CPU per request) with N concurrent clients, each
sending its next request when the last one ends: non-streaming, then streaming (a
request ends with ``[DONE]``). Every request starts a new conversation, with retrieval
on. Then ``langgraph dev`` serves the same graph and the same model, and the same load
goes to its runs API (``POST /runs/wait`` and ``POST /runs/stream``, stateless runs).

Printed per cell: requests, errors, req/s, p50/p95/p99 latency (ms), the CPU time the
server, the model server and this load generator spent per request (they share the
machine's cores), how busy the machine's CPUs were and how much of their time the
hypervisor gave to others (steal), and ours over LangGraph's req/s. Goal: >= 100 req/s
at 32 clients with p99 <= 500 ms (non-streaming); a missed goal is reported, never
asserted. Exit code 2 when something breaks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import BIN, free_port, redis_server, wait_http  # noqa: E402

GOAL_RPS, GOAL_P99_MS = 100.0, 500.0
MODEL = "bench-model"
TOPICS = [
    "How often does SQLite run a checkpoint in WAL mode",
    "Can readers block writers when the WAL is in use",
    "What happens to the WAL file when the last connection closes",
    "How large can the WAL file grow",
    "Why is WAL mode faster than a rollback journal",
    "What is a checkpoint starvation",
]


@contextmanager
def service(
    args: list[str], *, health_url: str, env: dict[str, str], cwd: Path = REPO
) -> Iterator[int]:
    """Run a server until the block ends (yields its pid); its output goes to a file."""
    log = Path(tempfile.mkstemp(prefix="ragent-bench-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        kept = True  # the output is kept when anything fails, inside the block too
        try:
            wait_http(health_url, proc, timeout=600)
            yield proc.pid
            kept = False
        except RuntimeError:
            raise RuntimeError(f"{args[0]} failed; see {log}") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
    if kept:
        print(f"{args[0]}: its output is kept in {log}", file=sys.stderr)
    else:
        log.unlink()


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == pid)
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def model_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    args = [sys.executable, "-m", "tests.openai_server", str(port)]
    with service(args, health_url=f"http://127.0.0.1:{port}/health", env={}) as pid:
        yield f"http://127.0.0.1:{port}/v1", pid


def environment(data_dir: Path, model_url: str) -> dict[str, str]:
    return {
        "RAGENT_DATA_DIR": str(data_dir),
        "RAGENT_LLM_BASE_URL": model_url,
        "RAGENT_LLM_MODEL": MODEL,
        "RAGENT_MEMORY_EXTRACTION": "explicit",
        "RAGENT_MEMORY_SUMMARIZER": "extractive",
        "RAGENT_SERVER_RATE_LIMIT": "1000000/minute",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }


Request = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


def ours(key: str, stream: bool) -> Request:
    headers = {"Authorization": f"Bearer {key}"}

    async def send(client: aiohttp.ClientSession, question: str) -> None:
        body = {"model": "ragent", "messages": [{"role": "user", "content": question}]}
        if not stream:
            async with client.post("/v1/chat/completions", json=body, headers=headers) as r:
                r.raise_for_status()
                await r.read()
            return
        body["stream"] = True
        async with client.post("/v1/chat/completions", json=body, headers=headers) as r:
            r.raise_for_status()
            async for line in r.content:
                if line.rstrip() == b"data: [DONE]":
                    return
            raise RuntimeError("stream ended without [DONE]")

    return send


def langgraph(stream: bool) -> Request:
    async def send(client: aiohttp.ClientSession, question: str) -> None:
        body: dict[str, Any] = {
            "assistant_id": "agent",
            "input": {"messages": [{"role": "user", "content": question}]},
            "context": {"tenant_id": "default", "user_id": "bench"},
        }
        if not stream:
            async with client.post("/runs/wait", json=body) as r:
                r.raise_for_status()
                if "__error__" in await r.json():
                    raise RuntimeError("run failed")
            return
        body["stream_mode"] = ["messages-tuple"]
        async with client.post("/runs/stream", json=body) as r:
            r.raise_for_status()
            async for line in r.content:
                if line.startswith(b"event: error"):
                    raise RuntimeError("run failed")

    return send


async def load(url: str, send: Request, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        for i in range(min(clients, 4)):  # warm-up: connections, caches, first-run paths
            await send(client, TOPICS[i % len(TOPICS)])
        stop = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            nonlocal errors
            i = n
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    await send(client, f"{TOPICS[i % len(TOPICS)]} (#{n}.{i})")
                    latencies.append(time.perf_counter() - started)
                except (aiohttp.ClientError, TimeoutError, RuntimeError):
                    errors += 1
                i += clients

        began = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        elapsed = time.perf_counter() - began
    ms = [x * 1000 for x in latencies] or [float("nan")]
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(ms),
        "p95": percentile(ms, 0.95),
        "p99": percentile(ms, 0.99),
    }


Results = dict[str, list[dict[str, Any]]]


def machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) clock ticks of the whole machine so far (Linux /proc/stat).

    Steal is time the hypervisor gave this virtual machine's CPUs to someone else: on a
    shared host it is capacity the cell did not have.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return total - idle - steal, steal, total


def measured(url: str, send: Request, clients: int, seconds: float, pids: dict[str, int]) -> Any:
    """One load cell, with the CPU time each process spent per request (ms)."""
    before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    own = time.process_time()
    ticks = machine_ticks()
    cell = asyncio.run(load(url, send, clients, seconds))
    busy, steal, total = (b - a for a, b in zip(ticks, machine_ticks(), strict=True))
    spent = {name: tree_cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    spent["load generator"] = time.process_time() - own
    done = max(cell["requests"], 1)
    cell["cpu_ms_per_request"] = {name: 1000 * sec / done for name, sec in spent.items()}
    cell["machine_busy"] = busy / max(total, 1)
    cell["machine_steal"] = steal / max(total, 1)
    return cell


def sweep(
    url: str,
    make: Callable[[bool], Request],
    clients: list[int],
    seconds: float,
    pids: dict[str, int],
) -> Results:
    out: Results = {}
    for mode, stream in (("json", False), ("stream", True)):
        out[mode] = []
        for n in clients:
            cell = measured(url, make(stream), n, seconds, pids)
            out[mode].append(cell)
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in cell["cpu_ms_per_request"].items())
            print(
                f"  {mode:6} {n:>3} clients: {cell['rps']:7.1f} req/s; CPU ms/request: {cpu}; "
                f"machine {cell['machine_busy']:.0%} busy, {cell['machine_steal']:.0%} stolen",
                flush=True,
            )
    return out


@contextmanager
def ragent_serve(env: dict[str, str], root: Path, workers: int) -> Iterator[tuple[str, str, int]]:
    made = subprocess.run(
        [str(BIN / "ragent"), "keys", "create", "--tenant", "default", "--user", "bench"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True, cwd=root,
    )  # fmt: skip
    port = free_port()
    args = [str(BIN / "ragent"), "serve", "--port", str(port), "--workers", str(workers)]
    with service(args, health_url=f"http://127.0.0.1:{port}/healthz", env=env, cwd=root) as pid:
        yield f"http://127.0.0.1:{port}", made.stdout.strip(), pid


@contextmanager
def langgraph_dev(env: dict[str, str], root: Path) -> Iterator[tuple[str, int]]:
    work = root / "project"
    work.mkdir()
    for entry in REPO.iterdir():
        if not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    port = free_port()
    args = [
        str(BIN / "langgraph"), "dev", "--port", str(port), "--no-browser", "--no-reload",
        "--config", "langgraph.json",
    ]  # fmt: skip
    with service(args, health_url=f"http://127.0.0.1:{port}/ok", env=env, cwd=work) as pid:
        yield f"http://127.0.0.1:{port}", pid


def table(name: str, results: Results, peer: Results | None) -> None:
    print(f"\n{name}")
    print(
        "mode    clients  requests errors   req/s    p50 ms   p95 ms   p99 ms  "
        "server CPU ms/req  vs langgraph"
    )
    for mode, cells in results.items():
        for i, c in enumerate(cells):
            ratio = ""
            if peer is not None:
                ratio = f"{c['rps'] / max(peer[mode][i]['rps'], 1e-9):.2f}x"
            print(
                f"{mode:7} {c['clients']:>7} {c['requests']:>9} {c['errors']:>6} {c['rps']:>7.1f} "
                f"{c['p50']:>8.1f} {c['p95']:>8.1f} {c['p99']:>8.1f}  "
                f"{c['cpu_ms_per_request']['server']:>17.1f}  {ratio}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-langgraph", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="ragent serve processes; >1 starts a Redis"
    )
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="ragent-bench-api-") as tmp,
        model_server() as (url, model_pid),
    ):
        root = Path(tmp)
        env = environment(root / "data", url)
        subprocess.run(
            [str(BIN / "ragent"), "ingest", str(REPO / "samples"), "--json"],
            env={**os.environ, **env}, capture_output=True, check=True, cwd=root,
        )  # fmt: skip
        print(f"ragent serve, {args.workers} worker(s) (POST /v1/chat/completions):", flush=True)
        with ExitStack() as stack:
            served = dict(env)
            pids = {"model": model_pid}
            if args.workers > 1:  # several workers share their state through Redis
                redis = stack.enter_context(redis_server())
                assert redis.proc is not None
                served["RAGENT_SERVER_REDIS_URL"] = redis.url
                pids["redis"] = redis.proc.pid
            api_url, key, pid = stack.enter_context(ragent_serve(served, root, args.workers))
            pids["server"] = pid
            mine = sweep(api_url, lambda stream: ours(key, stream), clients, args.seconds, pids)
        peer = None
        if not args.no_langgraph:
            print("langgraph dev (POST /runs/wait, /runs/stream):", flush=True)
            with langgraph_dev(env, root) as (lg_url, lg_pid):
                pids = {"server": lg_pid, "model": model_pid}
                peer = sweep(lg_url, langgraph, clients, args.seconds, pids)
    if args.json:
        print(json.dumps({"ragent": mine, "langgraph": peer}))
        return 0
    table("ragent serve", mine, peer)
    if peer is not None:
        table("langgraph dev", peer, None)
    top = max(mine["json"], key=lambda c: c["clients"])
    met = top["rps"] >= GOAL_RPS and top["p99"] <= GOAL_P99_MS
    print(
        f"\ngoal: >= {GOAL_RPS:g} req/s at {top['clients']} clients with p99 <= "
        f"{GOAL_P99_MS:g} ms: {'PASS' if met else 'FAIL'} ({top['rps']:.1f} req/s, p99 "
        f"{top['p99']:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (subprocess.CalledProcessError, RuntimeError, TimeoutError) as exc:
        print(f"bench/api.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
