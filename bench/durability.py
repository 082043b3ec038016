"""What ``checkpoint.durability`` costs a turn: exit, sync and async interleaved in one run.

Run from the repository root:

    .venv/bin/python bench/durability.py [--threads 30] [--turns 4]
        [--backends sqlite,redis] [--json]

As bench/first_token.py does, it ingests samples/ with the embedded engines, starts
tests/openai_server.py in its own process (an OpenAI-protocol model that answers at
once) and runs turns through ``app.turns.stream_ask`` (the path of the HTTP API) on
the compiled agent, retrieval on, with each checkpointer (SQLite, and Redis 8 with its
modules, fsync on every write). Each thread takes ``--turns`` turns, so later turns
carry a history; threads take the durabilities in turn (exit, sync, async, exit, ...),
so whatever else loads the machine weighs on all three alike. Printed per backend and
durability: CPU time of this process per turn and wall time per turn (p50, the model
answering at once, so this is the orchestration), and both as ratios to ``exit``.
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
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from first_token import TOPICS, model_server  # noqa: E402

MODES = ("exit", "sync", "async")


async def run(args: argparse.Namespace, data_dir: Path, base_url: str, redis: str | None) -> Any:
    from app.context import Context
    from app.graphs.agent import compile_agent
    from app.ingest.factory import build_ingestor
    from app.ingest.pipeline import IngestOptions
    from app.memory.checkpoint import open_checkpointer
    from app.resources import build_resources, use_resources
    from app.settings import load_settings
    from app.startup_gc import freeze_startup_heap
    from app.turns import stream_ask

    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        del os.environ[key]
    os.environ.update(
        {
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": base_url,
            "RAGENT_LLM_MODEL": "bench-model",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
        }
    )
    if redis:
        os.environ |= {"RAGENT_CHECKPOINT_BACKEND": "redis", "RAGENT_CHECKPOINT_REDIS_URL": redis}
    settings = load_settings()
    resources = build_resources(settings)
    if not (data_dir / "index.sqlite").exists():
        build_ingestor(resources).ingest(
            [REPO / "samples"],
            IngestOptions(tenant_id=settings.tenant_id, workers=0, progress=False),
        )
    per_mode = {
        mode: replace(
            resources,
            settings=settings.model_copy(
                update={"checkpoint": settings.checkpoint.model_copy(update={"durability": mode})}
            ),
        )
        for mode in MODES
    }
    context = Context(tenant_id=settings.tenant_id, user_id="bench")
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    async with open_checkpointer(settings) as saver:
        agent = compile_agent(saver)
        freeze_startup_heap()
        for t in range(args.warmup + args.threads):
            mode = MODES[t % len(MODES)]
            with use_resources(per_mode[mode]):
                for turn in range(args.turns):
                    question = f"{TOPICS[(t + turn) % len(TOPICS)]} (thread {t}, turn {turn})?"
                    started, cpu_started = time.perf_counter(), time.process_time()
                    async for _ in stream_ask(
                        agent,
                        question,
                        context=context,
                        thread_id=f"{'redis' if redis else 'sqlite'}-{t}",
                        max_chars=settings.limits.max_input_chars,
                    ):
                        pass
                    if t >= args.warmup:
                        cpu[mode].append((time.process_time() - cpu_started) * 1000)
                        wall[mode].append((time.perf_counter() - started) * 1000)
    if resources.models is not None:
        await resources.models.aclose()
    return {
        m: {"turns": len(cpu[m]), "cpu_ms": statistics.median(cpu[m]),
            "wall_ms": statistics.median(wall[m])}
        for m in MODES
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=30, help="threads measured (all modes)")
    parser.add_argument("--turns", type=int, default=4, help="turns per thread")
    parser.add_argument("--warmup", type=int, default=3, help="threads run first, not measured")
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.servers import redis_server

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ragent-durability-") as tmp, model_server() as url:
        for backend in args.backends.split(","):
            with ExitStack() as stack:
                redis = stack.enter_context(redis_server()).url if backend == "redis" else None
                results[backend] = asyncio.run(run(args, Path(tmp) / "data", url, redis))
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{args.threads} threads of {args.turns} turns, modes interleaved; p50 per turn")
    print("backend  durability  turns   CPU ms  wall ms   CPU vs exit  wall vs exit")
    for backend, modes in results.items():
        base = modes["exit"]
        for mode, r in modes.items():
            cpu, wall = r["cpu_ms"] / base["cpu_ms"], r["wall_ms"] / base["wall_ms"]
            print(
                f"{backend:8} {mode:10} {r['turns']:>6} {r['cpu_ms']:>8.1f} {r['wall_ms']:>8.1f}"
                f"   {cpu:>10.2f}x  {wall:>11.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
