"""What a hung model server costs a turn, and what a huge tool-call argument costs the loop.

Run from the repository root:

    .venv/bin/python bench/model_faults.py [--timeout-s 2] [--arg-kb 200]

It starts tests/openai_server.py in this process (an OpenAI-protocol model server) and:

1. runs one turn through the graph (``app.turns.ask``, then ``stream_ask``) with model
   memory extraction on, against a server that accepts each request and never answers,
   then against one that streams two pieces and stalls (``llm.stall_timeout_s`` is half
   the timeout). Printed: the turn's wall time over ``llm.timeout_s``, and how many
   requests reached the model. Goal: at most one timeout plus one stall (before the
   turn's deadline: three timeouts and three requests for the hung server).
2. streams one tool call whose arguments (``--arg-kb`` KB) arrive in two fragments, as
   vLLM sends them, while a ticker on the same event loop records its longest gap; once
   with the cap raised above the argument (it must arrive whole) and once with the
   default ``llm.max_tool_args_bytes`` (it must be refused). Goal: the loop never stalls
   for more than 100 ms (before: 33-69 s for 200 KB).

Missed goals are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import HumanMessage  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from app.answer import Answer  # noqa: E402
from app.context import Context  # noqa: E402
from app.graphs.agent import compile_agent  # noqa: E402
from app.llm.factory import build_models  # noqa: E402
from app.memory.store import open_store  # noqa: E402
from app.resources import build_resources, use_resources  # noqa: E402
from app.settings import LLMSettings, load_settings  # noqa: E402
from app.turns import ask, stream_ask  # noqa: E402
from tests.openai_server import Hang, OpenAIServer, Stall, ToolCalls, openai_server  # noqa: E402

MODEL = "bench-model"
QUESTION = "Remember that my favourite colour is teal. What is the capital of France?"
CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}


async def _turns(server: OpenAIServer, timeout_s: float) -> list[tuple[str, float, int]]:
    settings = load_settings()
    # A high breaker threshold: each turn meets the silent server, not an open circuit.
    settings.llm = LLMSettings(
        base_url=server.base_url,
        model=MODEL,
        timeout_s=timeout_s,
        stall_timeout_s=timeout_s / 2,
        breaker_failures=1000,
    )
    settings.memory.extraction = "llm"
    res = build_resources(settings)
    rows = []
    try:
        with use_resources(res):
            async with open_store(settings, res.embedder) as store:
                agent = compile_agent(InMemorySaver(), store)
                await _ask(agent, streamed=False)  # warm-up: models and indexes load here
                for name, behaviour in (("hung", Hang()), ("stalls", Stall("Paris", after=2))):
                    for streamed in (False, True):
                        server.reset()
                        server.plan(MODEL, *[behaviour for _ in range(10)])
                        started = time.monotonic()
                        await _ask(agent, streamed)
                        elapsed = time.monotonic() - started
                        kind = f"{name} {'stream' if streamed else 'json'}"
                        rows.append((kind, elapsed, server.calls(MODEL)))
    finally:
        if res.models is not None:
            await res.models.aclose()
    return rows


async def _ask(agent: Any, streamed: bool) -> None:
    thread = f"b{time.monotonic_ns()}"
    if streamed:
        events = [
            e
            async for e in stream_ask(
                agent, QUESTION, context=Context(), thread_id=thread, max_chars=4000
            )
        ]
        assert isinstance(events[-1], Answer)
    else:
        await ask(agent, QUESTION, context=Context(), thread_id=thread, max_chars=4000)


async def _stall(server: OpenAIServer, arg_kb: int, cap: int) -> tuple[float, str]:
    args = json.dumps({"expression": "1+" * (arg_kb * 512) + "1"})
    server.reset()
    server.plan(MODEL, ToolCalls([("calculator", args)], fragment=len(args) // 2 + 1))
    cfg = LLMSettings(
        base_url=server.base_url, model=MODEL, timeout_s=600, stall_timeout_s=600,
        max_retries=0, offline_fallback=False, max_tool_args_bytes=cap,
    )  # fmt: skip
    models = build_models(cfg)
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        reply: Any = await models.default.model.bind_tools([CALC]).ainvoke([HumanMessage("Sum.")])
    finally:
        done.set()
        await ticker
        await models.aclose()
    refused = bool(reply.response_metadata.get("refused_tool_calls"))
    whole = [c["args"] for c in reply.tool_calls] == [json.loads(args)]
    return max(gaps, default=0.0), "refused" if refused else "whole" if whole else "BROKEN"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout-s", type=float, default=2.0)
    parser.add_argument("--arg-kb", type=int, default=200)
    opts = parser.parse_args()
    missed = 0
    logging.disable(logging.WARNING)  # the fallbacks' warnings are expected here
    with tempfile.TemporaryDirectory() as scratch, openai_server() as server:
        import os

        os.environ["RAGENT_DATA_DIR"] = scratch
        print(f"1. a turn against a silent model server (llm.timeout_s = {opts.timeout_s} s)")
        for kind, elapsed, calls in await _turns(server, opts.timeout_s):
            ok = elapsed < 1.5 * opts.timeout_s + 1.0  # one deadline, at most one stall
            missed += not ok
            print(
                f"   {kind:13} {elapsed:6.2f} s = {elapsed / opts.timeout_s:4.2f} x timeout, "
                f"{calls} model request(s)" + ("" if ok else "  (goal missed)")
            )
        print(f"2. a {opts.arg_kb} KB tool-call argument in two fragments")
        for label, cap in (("cap above it", 4 * opts.arg_kb * 1024), ("default cap", 65536)):
            stall, outcome = await _stall(server, opts.arg_kb, cap)
            ok = stall < 0.1
            missed += not ok
            print(
                f"   {label:12} longest loop stall {stall * 1000:8.1f} ms, call {outcome}"
                + ("" if ok else "  (goal missed)")
            )
    print("all goals met" if not missed else f"{missed} goal(s) missed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
