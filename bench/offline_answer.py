"""The offline answerer's answer step: its time, and its answers' F1, with and without the embedder.

Run from the repository root:

    .venv/bin/python bench/offline_answer.py [--repeats 20] [--json]

It ingests samples/ with the real embedded engines (the local MiniLM embedder, SQLite
indexes) into a temporary data directory, retrieves the top ``retrieval.top_n`` chunks for
each question of evals/datasets/samples_qa.jsonl, and times only the answer step,
:func:`app.llm.offline.answerer.answer_from_sources`, over those chunks: once choosing
sentences by their terms alone, once with the local embedder as ``ragent serve`` wires it
(the question's vector is cached, as retrieval computed it; the sentences are embedded on
every call). It prints p50 and p95 per mode, the mean token F1 of the answerable questions
against their references, and the refusals. Figures are printed, never asserted.
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
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    from app.evals.textmatch import token_f1
    from app.ingest.factory import build_ingestor
    from app.ingest.pipeline import IngestOptions
    from app.llm.factory import cosine_similarity
    from app.llm.offline.answerer import answer_from_sources
    from app.prompts import DONT_KNOW
    from app.resources import build_resources
    from app.retrieval.types import SearchFilter
    from app.settings import load_settings

    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        del os.environ[key]
    os.environ["RAGENT_DATA_DIR"] = str(data_dir)
    settings = load_settings()
    resources = build_resources(settings)
    build_ingestor(resources).ingest(
        [REPO / "samples"], IngestOptions(tenant_id=settings.tenant_id, workers=0, progress=False)
    )
    items = [
        json.loads(line)
        for line in (REPO / "evals/datasets/samples_qa.jsonl").read_text().splitlines()
        if line.strip()
    ]
    flt = SearchFilter(settings.tenant_id)
    sources: list[list[tuple[str, str]]] = []
    for item in items:
        hits = await resources.retriever.search(item["question"], flt)
        sources.append([(f"S{i}", hit.chunk.text) for i, hit in enumerate(hits, 1)])
    modes = {
        "terms only": None,
        "terms + embedder": partial(cosine_similarity, resources.embedder),
    }
    out: dict[str, Any] = {"questions": len(items), "repeats": args.repeats, "modes": {}}
    for name, similarity in modes.items():
        times: list[float] = []
        f1s: list[float] = []
        refusals = {"answerable": 0, "unanswerable": 0}
        for item, srcs in zip(items, sources, strict=True):
            answer = answer_from_sources(
                item["question"],
                srcs,
                min_relevance=settings.llm.min_relevance,
                similarity=similarity,
            )
            kind = "unanswerable" if item["must_refuse"] else "answerable"
            refusals[kind] += answer == DONT_KNOW
            if not item["must_refuse"]:
                f1s.append(token_f1(answer, item["reference"]))
            for _ in range(args.repeats):
                start = time.perf_counter()
                answer_from_sources(
                    item["question"],
                    srcs,
                    min_relevance=settings.llm.min_relevance,
                    similarity=similarity,
                )
                times.append((time.perf_counter() - start) * 1000)
        out["modes"][name] = {
            "p50_ms": round(_percentile(times, 0.5), 2),
            "p95_ms": round(_percentile(times, 0.95), 2),
            "answer_f1": round(statistics.fmean(f1s), 3),
            "refused_answerable": refusals["answerable"],
            "refused_unanswerable": refusals["unanswerable"],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per question")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragent-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['questions']} questions of samples_qa.jsonl, {result['repeats']} timed calls each"
    )
    print(
        "| mode | answer step p50 ms | p95 ms | answer F1 | refused answerable "
        "| refused unanswerable |"
    )
    print("|---|---|---|---|---|---|")
    for name, m in result["modes"].items():
        print(
            f"| {name} | {m['p50_ms']} | {m['p95_ms']} | {m['answer_f1']} | "
            f"{m['refused_answerable']} | {m['refused_unanswerable']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
