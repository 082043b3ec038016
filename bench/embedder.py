"""The local embedder's two precisions side by side: speed and retrieval quality.

Run from the repository root:

    .venv/bin/python bench/embedder.py [--data DIR,DIR] [--rounds 4] [--passages 300]
        [--no-quality] [--json]

Both precisions of the packaged all-MiniLM-L6-v2 (``embed.precision``: float32 as exported,
int8 as quantized) are loaded from a scratch cache, and then:

- a lone query: CPU ms to embed each data set query alone on one thread, the way the query
  batcher runs one (rounds alternate between the precisions, so both see the same noise);
- passages: passages per second (wall) with every core, in the configured batches of 64;
- quality (unless --no-quality): dense nDCG@10 and Recall@10 over each whole BEIR set, for
  float32, int8, and int8 queries against float32 passages (an index built before the
  default changed).

Figures are printed, never asserted. Exit code 2 when something breaks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from retrieval_data import DataError, evaluate, load_beir  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "retrieval"
PRECISIONS = ("float32", "int8")
BATCH = 64  # embed.batch_size's default


def lone_query_ms(encoder: Any, queries: list[str]) -> float:
    """Median CPU ms of one query embedded alone on one thread."""
    spent = []
    for query in queries:
        started = time.process_time()
        encoder.encode([query], BATCH, 1)
        spent.append((time.process_time() - started) * 1000)
    return statistics.median(spent)


def passages_per_second(encoder: Any, passages: list[str]) -> float:
    started = time.perf_counter()
    encoder.encode(passages, BATCH, 0)
    return len(passages) / (time.perf_counter() - started)


def quality(encoders: dict[str, Any], root: Path) -> dict[str, dict[str, float | int]]:
    data = load_beir(root)
    corpus = {p: e.encode(data.texts, BATCH, 0) for p, e in encoders.items()}
    queries = {p: e.encode(data.queries, BATCH, 0) for p, e in encoders.items()}
    pairs = {
        "float32": ("float32", "float32"),
        "int8": ("int8", "int8"),
        "int8 queries, float32 passages": ("int8", "float32"),
    }
    out = {}
    for name, (q, p) in pairs.items():
        scores = queries[q] @ corpus[p].T
        top = np.argsort(-scores, axis=1)[:, :10]
        ranked = {qid: [data.doc_ids[j] for j in top[i]] for i, qid in enumerate(data.query_ids)}
        out[name] = evaluate(ranked, data)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"{DATA / 'dbpedia'},{DATA / 'business-reports'}")
    parser.add_argument("--rounds", type=int, default=4, help="alternating timed rounds")
    parser.add_argument("--passages", type=int, default=300, help="passages timed per round")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from app.retrieval.embedding.embedder import local_model_path
    from app.retrieval.embedding.encoder_cache import load_encoder

    roots = [Path(p) for p in args.data.split(",")]
    sets = [load_beir(root) for root in roots]
    queries = [q for data in sets for q in data.queries]
    passages = [t for data in sets for t in data.texts][: args.passages]
    with tempfile.TemporaryDirectory(prefix="ragent-bench-embedder-") as cache:
        encoders = {p: load_encoder(local_model_path(), Path(cache), p) for p in PRECISIONS}
        for encoder in encoders.values():  # warm-up: sessions, allocator
            encoder.encode(queries[:20], BATCH, 1)
            encoder.encode(passages[:20], BATCH, 0)
        lone: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        rate: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        for round_ in range(args.rounds):
            order = PRECISIONS if round_ % 2 == 0 else PRECISIONS[::-1]
            for p in order:
                lone[p].append(lone_query_ms(encoders[p], queries))
                rate[p].append(passages_per_second(encoders[p], passages))
        result: dict[str, Any] = {
            "lone_query_cpu_ms": {p: statistics.median(v) for p, v in lone.items()},
            "passages_per_s": {p: statistics.median(v) for p, v in rate.items()},
            "queries_timed": len(queries),
            "passages_timed": len(passages),
        }
        if not args.no_quality:
            result["quality"] = {root.name: quality(encoders, root) for root in roots}
    if args.json:
        print(json.dumps(result))
        return 0
    lone_ms, per_s = result["lone_query_cpu_ms"], result["passages_per_s"]
    print(f"lone query, CPU ms (median of {len(queries)} queries, {args.rounds} rounds):")
    for p in PRECISIONS:
        print(f"  {p:8} {lone_ms[p]:6.2f}")
    print(f"  int8 / float32: {lone_ms['int8'] / lone_ms['float32']:.2f}x the CPU")
    print(f"passages per second ({len(passages)} passages, every core, batches of {BATCH}):")
    for p in PRECISIONS:
        print(f"  {p:8} {per_s[p]:6.1f}")
    print(f"  int8 / float32: {per_s['int8'] / per_s['float32']:.2f}x the rate")
    for name, rows in result.get("quality", {}).items():
        print(f"dense retrieval on {name}:")
        for system, m in rows.items():
            print(f"  {system:32} nDCG@10 {m['ndcg@10']:.4f}  Recall@10 {m['recall@10']:.4f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataError, OSError) as exc:
        print(f"bench/embedder.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
