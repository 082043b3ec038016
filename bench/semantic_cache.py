"""The semantic answer cache: precision of its hits, hit rate on paraphrases, hit vs full turn.

Run from the repository root:

    .venv/bin/python bench/semantic_cache.py [--json] [--turns 17] [--pairs FILE] [--no-latency]

1. Decisions, on ``evals/datasets/cache_pairs.jsonl`` (true paraphrases and near misses
   that differ in one entity, number, negation, word or role, over the sample documents),
   or on another set of the same format (``--pairs``: ``cache_pairs_heldout.jsonl`` is
   written over the dev corpora's questions, apart from the agreement rules):
   for each pair the ``stored`` question's entry is put in a scope of its own, and the
   ``asked`` question looked up through :class:`app.cache.SemanticCache` on each engine
   (SQLite, and RediSearch on a throwaway Redis), with the configured thresholds and the
   local embedder. Printed: precision of hits (hits on paraphrases / hits) with the lower
   ends of its 95 % Wilson and Clopper-Pearson intervals, hit rate on paraphrases, near
   misses served, and each near miss served (a wrong hit). Then, from the cosine
   similarities alone, the same figures for embedding similarity without the agreement
   check at several thresholds, and a split check: the threshold is calibrated (the
   lowest with precision >= 0.99) on half of the base questions and scored on the other
   half.
2. Latency, on the samples ingested into a temporary index: each answerable question of
   ``evals/datasets/samples_qa.jsonl`` asked through the compiled agent with the cache on
   (the offline answerer as the model), once (a miss: a full turn, which also stores the
   answer) and then ``--hit-rounds`` times again (hits). Printed: p50 and p95 of each,
   per engine, and the mean time of a lookup alone. A turn on a real model takes seconds
   more (README: the local 0.5B model's p50 is 13.2 s), a hit the same.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from app.cache import CachedAnswer, Scope, SemanticCache, scope_key  # noqa: E402
from app.cache.agreement import agree  # noqa: E402
from app.cache.semantic import word_similarity  # noqa: E402
from app.context import Context  # noqa: E402
from app.graphs.agent import compile_agent  # noqa: E402
from app.ingest.factory import build_ingestor  # noqa: E402
from app.ingest.pipeline import IngestOptions  # noqa: E402
from app.resources import build_resources, use_resources  # noqa: E402
from app.settings import Settings, load_settings  # noqa: E402
from app.turns import ask  # noqa: E402
from tests.servers import redis_server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PAIRS = REPO / "evals" / "datasets" / "cache_pairs.jsonl"
QA = REPO / "evals" / "datasets" / "samples_qa.jsonl"
ENGINES = ("sqlite", "redis")


def _pairs(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def lower_bounds(right: int, served: int) -> dict[str, float | None]:
    """The lower ends of the two-sided 95 % Wilson and Clopper-Pearson intervals of a rate."""
    if not served:
        return {"wilson": None, "clopper_pearson": None}
    from scipy.stats import binomtest  # type: ignore[import-untyped]  # with datasketch

    test = binomtest(right, served)
    return {
        method: round(float(test.proportion_ci(0.95, method=m).low), 4)
        for method, m in (("wilson", "wilson"), ("clopper_pearson", "exact"))
    }


@contextmanager
def _settings(engine: str, data_dir: Path) -> Iterator[Settings]:
    settings = load_settings()
    settings.data_dir = data_dir
    settings.cache.enabled = True
    settings.cache.backend = engine  # type: ignore[assignment]
    with ExitStack() as stack:
        if engine == "redis":
            settings.cache.redis_url = stack.enter_context(redis_server()).url
        yield settings


def _scores(hits: list[bool], labels: list[str], *, bounds: bool = False) -> dict[str, Any]:
    paraphrases = sum(label == "paraphrase" for label in labels)
    served = sum(hits)
    right = sum(h and label == "paraphrase" for h, label in zip(hits, labels, strict=True))
    score: dict[str, Any] = {
        "pairs": len(labels),
        "paraphrases": paraphrases,
        "near_misses": len(labels) - paraphrases,
        "hits": served,
        "precision": round(right / served, 4) if served else None,
        "hit_rate": round(right / paraphrases, 4) if paraphrases else None,
        "near_misses_served": served - right,
    }
    if bounds:
        score["precision_lower_95"] = lower_bounds(right, served)
    return score


def decisions(engine: str, path: Path = PAIRS) -> dict[str, Any]:
    """Look every pair of ``path`` up through the cache on ``engine``; score the hits."""
    pairs = _pairs(path)
    with tempfile.TemporaryDirectory() as tmp, _settings(engine, Path(tmp)) as settings:
        resources = build_resources(settings)
        cache = resources.answer_cache
        assert isinstance(cache, SemanticCache)
        hits, labels = [], []
        for i, pair in enumerate(pairs):
            scope = Scope(
                tenant=f"pair-{i}", groups=(), model="m", embed_model="e", system_prompt=""
            )
            entry = CachedAnswer(
                question=pair["stored"], answer="a", citations=[], documents=[], created=time.time()
            )
            vector = resources.embedder.embed_query(pair["stored"])
            cache.store.put(scope_key(scope), vector, entry)
            found = asyncio.run(cache.lookup(scope, pair["asked"]))
            assert found.outcome != "error", f"{engine} failed a lookup"
            hits.append(found.outcome == "hit")
            labels.append(pair["label"])
        cache.store.clear()
        cache.store.close()
        score = _scores(hits, labels, bounds=True)
        score["wrong_hits"] = [
            pair
            for pair, hit in zip(pairs, hits, strict=True)
            if hit and pair["label"] != "paraphrase"
        ]
        return score


def sweep(settings: Settings, path: Path = PAIRS) -> dict[str, Any]:
    """Embedding similarity alone vs with the agreement check, and a split calibration."""
    resources = build_resources(settings)
    embedder = resources.embedder
    similar = word_similarity(embedder)
    pairs = _pairs(path)
    cosines, agreed, labels, halves = [], [], [], []
    for pair in pairs:
        a, b = embedder.embed_query(pair["stored"]), embedder.embed_query(pair["asked"])
        cosines.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
        outcome = agree(
            pair["stored"],
            pair["asked"],
            similar,
            term_threshold=settings.cache.term_threshold,
        )
        agreed.append(outcome.ok)
        labels.append(pair["label"])
        halves.append(hashlib.sha256(pair["stored"].encode()).digest()[0] % 2)
    thresholds = [0.8, 0.85, 0.9, 0.95, 0.97, 0.99]
    alone = {t: _scores([c >= t for c in cosines], labels) for t in thresholds}
    checked = {
        t: _scores([c >= t and ok for c, ok in zip(cosines, agreed, strict=True)], labels)
        for t in thresholds
    }

    def calibrated(half: int, with_check: bool) -> dict[str, Any]:
        pick = [i for i, h in enumerate(halves) if h == half]
        rest = [i for i, h in enumerate(halves) if h != half]
        for t in sorted({round(c, 3) for c in cosines}):
            hits = [cosines[i] >= t and (agreed[i] or not with_check) for i in pick]
            score = _scores(hits, [labels[i] for i in pick])
            if score["precision"] is None or score["precision"] >= 0.99:
                held = [cosines[i] >= t and (agreed[i] or not with_check) for i in rest]
                return {"threshold": t, "held_out": _scores(held, [labels[i] for i in rest])}
        return {}

    return {
        "embedding_alone": {str(t): s for t, s in alone.items()},
        "with_agreement": {str(t): s for t, s in checked.items()},
        "split": {
            "with_agreement": [calibrated(h, True) for h in (0, 1)],
            "embedding_alone": [calibrated(h, False) for h in (0, 1)],
        },
    }


def _questions(limit: int) -> list[str]:
    rows = [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]
    return [r["question"] for r in rows if not r["must_refuse"]][:limit]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _turns(questions: list[str], hit_rounds: int) -> dict[str, list[float]]:
    agent = compile_agent(InMemorySaver())
    times: dict[str, list[float]] = {"miss": [], "hit": [], "other": []}
    ctx = Context(tenant_id="bench", user_id="u")
    for round_ in range(1 + hit_rounds):
        for i, question in enumerate(questions):
            started = time.perf_counter()
            answer = await ask(
                agent, question, context=ctx, thread_id=f"{round_}-{i}", max_chars=8000
            )
            elapsed = time.perf_counter() - started
            key = answer.cache if answer.cache in {"miss", "hit"} else "other"
            if round_ and answer.cache == "miss":
                key = "other"  # an answer that was not stored (refused, uncited)
            times[key].append(elapsed)
    return times


def latency(engine: str, data_dir: Path, turns: int, hit_rounds: int) -> dict[str, Any]:
    """Ask each question twice through the agent; time the full turns and the hits."""
    with _settings(engine, data_dir) as settings:
        resources = build_resources(settings)
        cache = resources.answer_cache
        assert cache is not None
        cache.store.clear()
        with use_resources(resources):
            times = asyncio.run(_turns(_questions(turns), hit_rounds))
        counters = cache.store.counters()
        cache.store.close()
    out: dict[str, Any] = {}
    for key in ("miss", "hit"):
        if times[key]:
            out[f"{key}_turns"] = len(times[key])
            out[f"{key}_p50_ms"] = _pct(times[key], 0.5)
            out[f"{key}_p95_ms"] = _pct(times[key], 0.95)
    for key in ("hit", "miss"):
        if counters.get(key):
            out[f"lookup_{key}_mean_ms"] = round(
                1000 * counters[f"{key}_seconds"] / counters[key], 2
            )
    out["not_cached_turns"] = len(times["other"])
    return out


def _ingest(settings: Settings) -> None:
    resources = build_resources(settings)
    build_ingestor(resources).ingest(
        [REPO / "samples"], IngestOptions(tenant_id="bench", workers=0, progress=False)
    )
    resources.writer.flush()


def main() -> int:
    """Print the figures (or one JSON object with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--turns", type=int, default=17, help="answerable questions asked")
    parser.add_argument("--hit-rounds", type=int, default=3, help="times each is asked again")
    parser.add_argument(
        "--pairs", type=Path, default=PAIRS, help="paraphrase / near-miss pairs (JSON lines)"
    )
    parser.add_argument("--no-latency", action="store_true", help="decisions and sweep only")
    args = parser.parse_args()
    path = args.pairs.resolve()
    name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    report: dict[str, Any] = {"dataset": name}
    settings = load_settings()
    report["thresholds"] = {
        "cosine": settings.cache.threshold,
        "word": settings.cache.term_threshold,
    }
    report["decisions"] = {engine: decisions(engine, path) for engine in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        report["similarity"] = sweep(replace_dir(settings, Path(tmp)), path)
    report["latency"] = {}
    if not args.no_latency:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            _ingest(replace_dir(settings, data_dir))
            report["latency"] = {
                engine: latency(engine, data_dir, args.turns, args.hit_rounds) for engine in ENGINES
            }
    if args.json:
        print(json.dumps(report))  # noqa: T201
        return 0
    _print(report)
    return 0


def replace_dir(settings: Settings, data_dir: Path) -> Settings:
    """A copy of ``settings`` on another data dir."""
    settings = settings.model_copy(deep=True)
    settings.data_dir = data_dir
    return settings


def _print(report: dict[str, Any]) -> None:
    out = print  # noqa: T201
    out(f"dataset {report['dataset']}; thresholds {report['thresholds']}")
    for engine, score in report["decisions"].items():
        out(
            f"{engine:6} hits {score['hits']}/{score['pairs']}  precision {score['precision']}  "
            f"hit rate on paraphrases {score['hit_rate']} ({score['paraphrases']})  "
            f"near misses served {score['near_misses_served']}/{score['near_misses']}"
        )
        low = score["precision_lower_95"]
        out(
            f"       precision 95 % lower bound: Wilson {low['wilson']}  "
            f"Clopper-Pearson {low['clopper_pearson']}"
        )
        for pair in score["wrong_hits"]:
            out(f"       wrong hit ({pair['kind']}): {pair['stored']!r} -> {pair['asked']!r}")
    similarity = report["similarity"]
    for name in ("embedding_alone", "with_agreement"):
        out(f"{name}:")
        for t, s in similarity[name].items():
            out(f"  cosine >= {t}: precision {s['precision']}  hit rate {s['hit_rate']}")
    for name, halves in similarity["split"].items():
        for half in halves:
            held = half.get("held_out", {})
            out(
                f"split {name}: threshold {half.get('threshold')} -> held-out precision "
                f"{held.get('precision')}  hit rate {held.get('hit_rate')}"
            )
    for engine, figures in report["latency"].items():
        out(f"{engine:6} " + "  ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    sys.exit(main())
