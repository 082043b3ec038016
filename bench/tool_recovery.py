"""How many tool calls a local model gets through, before and after recovering text calls.

Run from the repository root (the model is fetched and verified by scripts/models.sh):

    .venv/bin/python bench/tool_recovery.py [--model qwen2.5-coder-0.5b] [--gguf PATH]

For every question of ``evals/datasets/tool_use.jsonl`` it asks the model once, as the
agent's ``respond`` node does (the system prompt, the agent's own tool schemas bound), on
a llama.cpp server started for the GGUF file, with ``llm.tool_call_recovery`` off, so the
reply is what the server made of the model's output. It then counts, per question:

- before: the reply's native ``tool_calls``;
- after: the same, or the calls :func:`app.llm.tool_recovery.recover_tool_calls` reads
  from the reply's text (what ragent does with recovery on).

A call is usable when it names the expected tool and its arguments pass the tool's
schema; a question that needs no tool is right when no call is made. Printed: the share
of tool questions with a usable call, before and after, and the share of no-tool
questions left without a call. Rates, not times: a busy machine only makes it slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage  # noqa: E402
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402

from app import prompts  # noqa: E402
from app.config.llm import LLMSettings  # noqa: E402
from app.llm.factory import build_models  # noqa: E402
from app.llm.local.process import alocal_model  # noqa: E402
from app.llm.tool_recovery import recover_tool_calls  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.tools.catalog import build_registry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "evals" / "datasets" / "tool_use.jsonl"


def _gguf(model: str) -> Path:
    done = subprocess.run(
        [str(REPO / "scripts" / "models.sh"), "path", model],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def _usable(calls: list[dict[str, Any]], expected: list[dict[str, Any]], registry: Any) -> bool:
    if not expected:
        return not calls
    if not calls:
        return False
    first = calls[0]
    name = expected[0]["name"]
    return bool(first["name"] == name and not registry.validate(name, first["args"]))


async def _run(gguf: Path, model: str, port: int) -> dict[str, Any]:
    settings = load_settings()
    registry = build_registry(settings.tools)
    specs = [convert_to_openai_tool(tool) for tool in registry.tools]
    cfg = LLMSettings(
        local_gguf=gguf,
        local_port=port,
        model=model,
        timeout_s=600,
        stall_timeout_s=120,
        max_retries=0,
        offline_fallback=False,
        tool_call_recovery="off",
        max_tokens=400,
    )
    items = [json.loads(line) for line in DATASET.read_text().splitlines() if line.strip()]
    system = prompts.SYSTEM_PROMPT.format(now=datetime.now(UTC).isoformat(timespec="seconds"))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(os.environ.get("BENCH_LOG_DIR", tmp))  # the model server's log goes there
        async with alocal_model(cfg, logs):
            models = build_models(cfg)
            chain = models.default.model.bind_tools(specs)
            try:
                for item in items:
                    reply = await chain.ainvoke(
                        [SystemMessage(system), HumanMessage(item["question"])]
                    )
                    assert isinstance(reply, AIMessage)
                    native = [dict(c) for c in reply.tool_calls]
                    found = None if native else recover_tool_calls(reply.text, specs)
                    after = native or ([dict(c) for c in found.calls] if found else [])
                    expected = item["expected_tools"]
                    rows.append(
                        {
                            "id": item["id"],
                            "needs_tool": bool(expected),
                            "native": bool(native),
                            "recovered": found.format if found else None,
                            "before": _usable(native, expected, registry),
                            "after": _usable(after, expected, registry),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                await models.aclose()
    return {"rows": rows}


def main() -> None:
    """Run the bench and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--gguf", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()
    gguf = args.gguf or _gguf(args.model)
    rows = asyncio.run(_run(gguf, args.model, args.port))["rows"]
    tool_rows = [r for r in rows if r["needs_tool"]]
    plain = [r for r in rows if not r["needs_tool"]]

    def share(part: list[dict[str, Any]], key: str) -> str:
        hits = sum(1 for r in part if r[key])
        return f"{hits}/{len(part)} ({100 * hits / max(1, len(part)):.0f} %)"

    print(f"\nmodel: {args.model} ({gguf.name}), {len(rows)} questions of {DATASET.name}")
    print(f"tool questions, native tool_calls:            {share(tool_rows, 'native')}")
    print(f"tool questions, usable call before recovery:  {share(tool_rows, 'before')}")
    print(f"tool questions, usable call after recovery:   {share(tool_rows, 'after')}")
    print(f"no-tool questions left without a call, after: {share(plain, 'after')}")
    formats = sorted({r["recovered"] for r in rows if r["recovered"]})
    print(f"recovered formats: {', '.join(formats) or 'none'}")


if __name__ == "__main__":
    main()
