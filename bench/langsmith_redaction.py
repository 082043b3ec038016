"""What redacting LangSmith runs costs, next to what the SDK spends serialising them.

Each traced node, model call and tool call is two run operations (create, then update),
and each goes through ``redact_run`` before the SDK serialises it. This times both on
runs shaped like those of a RAG turn (a node with its state, a model call with its
prompt and reply), each with a fresh checkpoint namespace as LangGraph gives every step.

    .venv/bin/python bench/langsmith_redaction.py [--runs 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langsmith._internal._serde import dumps_json

from app.observability.run_allowlist import redact_run

SOURCE = "SQLite checkpoints the WAL file when it reaches 1000 pages. " * 12


def _metadata(node: str) -> dict[str, Any]:
    return {
        "thread_id": "acme/ann@example.com/t1",
        "ls_integration": "langgraph",
        "langgraph_step": 5,
        "langgraph_node": node,
        "langgraph_triggers": [f"branch:to:{node}"],
        "langgraph_path": ["__pregel_pull", node],
        "langgraph_checkpoint_ns": f"{node}:{uuid.uuid4()}",
        "revision_id": "ebda989",
    }


def node_run() -> dict[str, Any]:
    """A ``retrieve`` node: the state in, eight sources out."""
    sources = [{"label": f"S{i}", "text": SOURCE, "source": "/docs/wal.html"} for i in range(8)]
    return {
        "id": str(uuid.uuid4()),
        "name": "retrieve",
        "run_type": "chain",
        "inputs": {"messages": [HumanMessage("How often does SQLite checkpoint?")]},
        "outputs": {"sources": sources, "degraded": []},
        "events": [{"name": "start", "time": "t0"}, {"name": "end", "time": "t1"}],
        "tags": ["graph:step:4"],
        "extra": {"metadata": _metadata("retrieve")},
    }


def model_run() -> dict[str, Any]:
    """A model call: the prompt with eight sources in, a cited reply out."""
    reply = AIMessage(
        "It checkpoints at 1000 pages. [S1]",
        response_metadata={"model_name": "qwen2.5-7b"},
        usage_metadata={"input_tokens": 1200, "output_tokens": 12, "total_tokens": 1212},
    )
    outputs = LLMResult(generations=[[ChatGeneration(message=reply)]]).model_dump()
    outputs["generations"][0][0]["message"] = dumpd(reply)
    prompt = [SystemMessage(SOURCE * 8), HumanMessage("How often does SQLite checkpoint?")]
    return {
        "id": str(uuid.uuid4()),
        "name": "ChatOpenAI",
        "run_type": "llm",
        "inputs": {"messages": [[dumpd(m) for m in prompt]]},
        "outputs": outputs,
        "events": [{"name": "start", "time": "t0"}, {"name": "end", "time": "t1"}],
        "extra": {"metadata": _metadata("respond"), "invocation_params": {"model": "qwen"}},
    }


def _per_run_us(work: Callable[[dict[str, Any]], object], runs: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for run in runs:
        work(run)
    return (time.perf_counter() - started) / len(runs) * 1e6


def main() -> None:
    """Print the median cost per run operation of redaction and of serialisation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for make in (node_run, model_run):
        redact_run(make())  # imports and caches warm
        redacted, serialised = [], []
        for _ in range(args.rounds):
            runs = [make() for _ in range(args.runs)]
            redacted.append(_per_run_us(redact_run, runs))
            serialised.append(_per_run_us(dumps_json, runs))
        r, s = statistics.median(redacted), statistics.median(serialised)
        print(
            f"{make.__name__}: redact_run {r:.1f} us, SDK serialisation of the full run "
            f"{s:.1f} us (median of {args.rounds} rounds of {args.runs})"
        )


if __name__ == "__main__":
    main()
