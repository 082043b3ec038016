"""Orchestration time before the first token, with a model that answers at once.

Run from the repository root:

    .venv/bin/python bench/first_token.py [--requests 200] [--warmup 20] [--json]

It ingests samples/ with the real embedded engines (the local MiniLM embedder, SQLite
indexes), starts tests/openai_server.py in its own process (an OpenAI-protocol server
that streams like vLLM and answers at once) as the chat model behind the fallback chain,
and runs turns
through ``app.turns.stream_ask`` (the path of ``ragent ask`` and the HTTP API) on the
compiled agent with the SQLite checkpointer and retrieval on. Every question is new, so no
cache helps. Per turn:

- pre-model: from the call until the model server has the request: guards, memory,
  routing, query embedding, dense and BM25 search, fusion, prompt assembly, the HTTP
  request. This is the orchestration time, the model excluded.
- first token: from the call until the first token reaches the caller (adds the loopback
  round trip and the server's immediate reply).

Goal: pre-model p50 <= 30 ms. Figures are printed; a missed goal is reported, never
asserted. Exit code 2 when something breaks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL_P50_MS = 30.0
TOPICS = [
    "How often does SQLite run a checkpoint in WAL mode",
    "What does VACUUM do to dead tuples in PostgreSQL",
    "How do I sort a list of tuples by the second item in Python",
    "Can readers block writers when the WAL is in use",
    "What is autovacuum and when does it run",
    "How do Markdown extensions get configured",
]


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "p50": statistics.median(ordered),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": ordered[-1],
    }


class NodeClock(BaseCallbackHandler):
    """With --breakdown: when each node ran, and when the model call began."""

    run_inline = True

    def __init__(self) -> None:
        self.open: dict[UUID, tuple[str, float]] = {}
        self.spans: dict[str, float] = {}
        self.model_start: float | None = None

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        name, metadata = kwargs.get("name"), kwargs.get("metadata") or {}
        if name and name == metadata.get("langgraph_node"):
            self.open[run_id] = (name, time.monotonic())

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id in self.open:
            name, started = self.open.pop(run_id)
            self.spans.setdefault(name, (time.monotonic() - started) * 1000)
            self.spans.setdefault(f"{name}@", started)

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        if self.model_start is None:
            self.model_start = time.monotonic()


async def run(args: argparse.Namespace, data_dir: Path, base_url: str) -> dict[str, Any]:
    import httpx

    from app.context import Context
    from app.conversations import thread_key
    from app.graphs.agent import compile_agent
    from app.ingest.factory import build_ingestor
    from app.ingest.pipeline import IngestOptions
    from app.memory.checkpoint import open_checkpointer
    from app.resources import build_resources, use_resources
    from app.settings import load_settings
    from app.startup_gc import freeze_startup_heap
    from app.turns import Token, stream_ask

    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        del os.environ[key]
    os.environ.update(
        {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": base_url,
            "RAGENT_LLM_MODEL": "bench-model",
        }
    )
    settings = load_settings()
    resources = build_resources(settings)
    report = build_ingestor(resources).ingest(
        [REPO / "samples"],
        IngestOptions(tenant_id=settings.tenant_id, workers=0, progress=False),
    )
    log(f"ingested {report.documents} documents, {report.chunks} chunks")
    context = Context(tenant_id=settings.tenant_id, user_id="bench")
    started_at: list[float] = []
    first_token: list[float] = []
    cpu: list[float] = []
    sources: list[int] = []
    clocks: list[NodeClock] = []
    with use_resources(resources):
        async with open_checkpointer(settings) as saver:
            agent = compile_agent(saver)
            # As `ragent serve` does once it is warm: full collections skip the start-up heap.
            freeze_startup_heap()
            for i in range(args.warmup + args.requests):
                question = f"{TOPICS[i % len(TOPICS)]} (case {i})?"
                clock = NodeClock()
                clocks.append(clock)
                started, cpu_started = time.monotonic(), time.process_time()
                first = None
                answer = None
                async for event in stream_ask(
                    agent,
                    question,
                    context=context,
                    thread_id=f"bench-{i}",
                    max_chars=settings.limits.max_input_chars,
                    callbacks=[clock] if args.breakdown else None,
                ):
                    if isinstance(event, Token):
                        if event.text and first is None:
                            first = time.monotonic()
                    else:
                        answer = event
                cpu.append((time.process_time() - cpu_started) * 1000)
                if first is None or answer is None:
                    raise RuntimeError(f"turn {i}: no streamed answer from the model")
                snapshot = await agent.aget_state(
                    {"configurable": {"thread_id": thread_key(context, f"bench-{i}")}}
                )
                sources.append(len(snapshot.values["sources"]))
                started_at.append(started)
                first_token.append((first - started) * 1000)
    if resources.models is not None:
        await resources.models.aclose()
    async with httpx.AsyncClient() as client:
        arrivals = (await client.get(base_url.removesuffix("/v1") + "/debug/arrivals")).json()
    if len(arrivals) != len(started_at):
        raise RuntimeError(f"{len(arrivals)} model requests for {len(started_at)} turns")
    pre_model = [(a - s) * 1000 for a, s in zip(arrivals, started_at, strict=True)]
    pre_model, first_token = pre_model[args.warmup :], first_token[args.warmup :]
    breakdown: dict[str, float] = {}
    if args.breakdown:
        measured = list(zip(clocks, arrivals, strict=True))[args.warmup :]
        calls = started_at[args.warmup :]
        breakdown["call until the first node starts"] = statistics.median(
            (c.spans.get("guard_input@", s) - s) * 1000
            for (c, _), s in zip(measured, calls, strict=True)
        )
        for node in ("guard_input", "load_memory", "route", "retrieve"):
            breakdown[node] = statistics.median(c.spans.get(node, 0.0) for c, _ in measured)
        breakdown["between the nodes"] = statistics.median(
            (c.spans.get("respond@", 0.0) - c.spans.get("guard_input@", 0.0)) * 1000
            - sum(c.spans.get(n, 0.0) for n in ("guard_input", "load_memory", "route", "retrieve"))
            for c, _ in measured
        )
        breakdown["respond until the model call"] = statistics.median(
            ((c.model_start or 0.0) - c.spans.get("respond@", 0.0)) * 1000 for c, _ in measured
        )
        breakdown["model client until the server has it"] = statistics.median(
            (arrival - (c.model_start or arrival)) * 1000 for c, arrival in measured
        )
    return {
        "requests": args.requests,
        "chunks_indexed": report.chunks,
        "sources_per_turn": statistics.mean(sources),
        "pre_model_ms": percentiles(pre_model),
        "first_token_ms": percentiles(first_token),
        "cpu_ms_per_turn": percentiles(cpu[args.warmup :]),
        "load_average": os.getloadavg(),
        "goal_pre_model_p50_ms": GOAL_P50_MS,
        "goal_met": statistics.median(pre_model) <= GOAL_P50_MS,
        "breakdown_p50_ms": breakdown,
    }


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def model_server() -> Iterator[str]:
    """tests/openai_server.py in its own process, so it takes no time from the graph's."""
    from tests.servers import free_port, service

    port = free_port()
    args = [sys.executable, "-m", "tests.openai_server", str(port)]
    with service(args, health_url=f"http://127.0.0.1:{port}/health", env={}):
        yield f"http://127.0.0.1:{port}/v1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each node (adds a callback)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ragent-first-token-") as tmp,
            model_server() as url,
        ):
            result = asyncio.run(run(args, Path(tmp), url))
    except Exception as exc:  # noqa: BLE001 - the benchmark reports and exits 2
        log(f"broke: {type(exc).__name__}: {exc}")
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    pre, first = result["pre_model_ms"], result["first_token_ms"]
    print(
        f"first token: {result['requests']} turns, retrieval on ({result['sources_per_turn']:.1f} "
        f"sources a turn from {result['chunks_indexed']} chunks), model server answering "
        "at once"
    )
    rows = (
        ("pre-model orchestration", pre),
        ("time to first token", first),
        ("CPU of this process/turn", result["cpu_ms_per_turn"]),
    )
    for name, stats in rows:
        print(
            f"  {name:<24} p50 {stats['p50']:6.1f} ms   p90 {stats['p90']:6.1f} ms   "
            f"p99 {stats['p99']:6.1f} ms   max {stats['max']:6.1f} ms"
        )
    for part, ms in result["breakdown_p50_ms"].items():
        print(f"    {part:<38} p50 {ms:6.1f} ms")
    load = ", ".join(f"{x:.1f}" for x in result["load_average"])
    print(f"  load average at the end: {load} on {os.cpu_count()} cores")
    verdict = "met" if result["goal_met"] else "goal missed"
    print(f"  goal pre-model p50 <= {GOAL_P50_MS:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
