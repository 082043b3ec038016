"""How much of a tool loop's second model call the model server can take from its cache.

Run from the repository root (the model is fetched and verified by scripts/models.sh):

    .venv/bin/python bench/prefix_cache.py [--model qwen2.5-coder-0.5b] [--rounds 3]

A tool loop calls the model again with the same system prompt, the same tool schemas and
the conversation so far, plus the tool's result. llama.cpp (like vLLM's prefix caching)
evaluates again only the tokens after the longest prefix it still holds. The agent's
system prompt ends with the current time, and the chat template puts the tool schemas
after the system text, so a time stamp that changes between the two calls makes the
server evaluate the tool schemas and the conversation again.

Per round it sends the agent's first call (system prompt, the agent's own tool schemas,
a question) and then the second (the same plus the model's call and the tool's result),
once with the time stamp to the second, changed between the calls (as before), and once
to the minute, unchanged (as the agent now sends it). Printed: the prompt tokens the
server evaluated for the second call (llama.cpp's ``timings.prompt_n``) and the time it
took (``timings.prompt_ms``), as medians over the rounds, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402

from app import prompts  # noqa: E402
from app.config.llm import LLMSettings  # noqa: E402
from app.llm.local.process import alocal_model  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.tools.catalog import build_registry  # noqa: E402
from bench.tool_recovery import _gguf  # noqa: E402

QUESTION = "What is 17 * 23?"
CALL = {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": ""}}


def _messages(stamp: str, second: bool) -> list[dict[str, Any]]:
    system = prompts.SYSTEM_PROMPT.format(now=stamp)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": QUESTION},
    ]
    if second:
        call = {**CALL, "function": {**CALL["function"], "arguments": '{"expression": "17 * 23"}'}}
        messages += [
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "391"},
        ]
    return messages


async def _timings(
    client: httpx.AsyncClient, model: str, tools: list[dict[str, Any]], stamps: tuple[str, str]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for stamp, second in ((stamps[0], False), (stamps[1], True)):
        body = {
            "model": model,
            "messages": _messages(stamp, second),
            "tools": tools,
            "max_tokens": 1,
            "temperature": 0,
        }
        reply = (await client.post("/v1/chat/completions", json=body)).json()
        timings = reply.get("timings", {})
        out = {
            "prompt_tokens": float(reply["usage"]["prompt_tokens"]),
            "evaluated": float(timings.get("prompt_n", "nan")),
            "ms": float(timings.get("prompt_ms", "nan")),
        }
    return out


async def _run(gguf: Path, model: str, port: int, rounds: int) -> dict[str, Any]:
    registry = build_registry(load_settings().tools)
    tools = [convert_to_openai_tool(tool) for tool in registry.tools]
    cfg = LLMSettings(local_gguf=gguf, local_port=port, model=model, timeout_s=600)
    results: dict[str, list[dict[str, float]]] = {"seconds": [], "minutes": []}
    with tempfile.TemporaryDirectory() as logs:
        async with (
            alocal_model(cfg, Path(logs)),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client,
        ):
            for index in range(rounds):
                now = datetime.now(UTC) + timedelta(hours=index)  # a new prefix each round
                by_second = (
                    now.isoformat(timespec="seconds"),
                    (now + timedelta(seconds=7)).isoformat(timespec="seconds"),
                )
                minute = now.isoformat(timespec="minutes")
                results["seconds"].append(await _timings(client, model, tools, by_second))
                results["minutes"].append(await _timings(client, model, tools, (minute, minute)))
    return results


def main() -> None:
    """Run the bench and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--gguf", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gguf = args.gguf or _gguf(args.model)
    results = asyncio.run(_run(gguf, args.model, args.port, args.rounds))
    medians = {
        mode: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for mode, rows in results.items()
    }
    print(json.dumps({"model": args.model, "rounds": args.rounds, "medians": medians}))
    old, new = medians["seconds"], medians["minutes"]
    print(
        f"second call of a tool loop, {old['prompt_tokens']:.0f} prompt tokens: "
        f"stamp to the second {old['evaluated']:.0f} evaluated in {old['ms']:.0f} ms; "
        f"to the minute {new['evaluated']:.0f} in {new['ms']:.0f} ms "
        f"({new['ms'] / old['ms']:.2f}x the time)"
    )


if __name__ == "__main__":
    main()
