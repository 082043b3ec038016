"""BEIR-format data, cached query and passage embeddings, metrics and latency summaries.

Shared by bench/retrieval.py and the peer worker (bench/retrieval_peers.py), which runs in
a separate virtual environment: nothing here imports ragent, only numpy and the standard
library (the embedder is imported lazily, on a cache miss, in the main process).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Beir",
    "DataError",
    "cached_embeddings",
    "embedding_folder",
    "evaluate",
    "latency_summary",
    "load_beir",
    "passage",
    "timed_rounds",
]

K = 10


class DataError(Exception):
    """A data set is missing or malformed."""


@dataclass(frozen=True)
class Beir:
    """A BEIR-format data set: one corpus document is one chunk (title + text)."""

    name: str
    root: Path
    doc_ids: list[str]
    texts: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]
    """query id -> {doc id: graded relevance}; queries without judgments are absent."""
    titles: list[str] = field(default_factory=list)
    """Document titles; ragent also indexes them as the chunk's heading, as its eval does."""

    @property
    def judged(self) -> list[str]:
        """Query ids with at least one relevant (grade > 0) document."""
        return [q for q in self.query_ids if any(g > 0 for g in self.qrels.get(q, {}).values())]

    def fingerprint(self) -> str:
        """A digest of the corpus and query files (the embedding cache key)."""
        digest = hashlib.sha256()
        for name in ("corpus.jsonl", "queries.jsonl"):
            digest.update((self.root / name).read_bytes())
        return digest.hexdigest()[:16]


def passage(title: str, text: str) -> str:
    """The chunk text of a corpus document: title and text, as BEIR joins them."""
    return f"{title} {text}".strip() if title else text.strip()


def _jsonl(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path} not found")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: {exc.msg}") from None
    return rows


def load_beir(root: Path) -> Beir:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv`` from ``root``."""
    corpus = _jsonl(root / "corpus.jsonl")
    queries = _jsonl(root / "queries.jsonl")
    qrels_path = root / "qrels" / "test.tsv"
    if not qrels_path.is_file():
        raise DataError(f"{qrels_path} not found")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        if number == 1 and fields[0] == "query-id" or not line.strip():
            continue
        if len(fields) != 3:
            raise DataError(f"{qrels_path}:{number}: expected 3 tab-separated fields")
        qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    try:
        doc_ids = [str(d["_id"]) for d in corpus]
        texts = [passage(d.get("title") or "", d.get("text") or "") for d in corpus]
        query_ids = [str(q["_id"]) for q in queries]
        query_texts = [str(q["text"]) for q in queries]
    except KeyError as exc:
        raise DataError(f"{root}: a line has no {exc.args[0]!r} field") from None
    if len(set(doc_ids)) != len(doc_ids):
        raise DataError(f"{root / 'corpus.jsonl'}: duplicate _id values")
    titles = [str(d.get("title") or "") for d in corpus]
    return Beir(root.name, root, doc_ids, texts, query_ids, query_texts, qrels, titles)


def embedding_folder(data: Beir, cache: Path, model: str) -> Path:
    """Where the vectors of ``data`` embedded by ``model`` are kept."""
    return cache / "embeddings" / f"{data.name}-{model}-{data.fingerprint()}"


def cached_embeddings(
    data: Beir,
    cache: Path,
    model: str,
    embed: Callable[[list[str]], np.ndarray],
    log: Callable[[str], object] = print,
) -> tuple[np.ndarray, np.ndarray]:
    """Passage and query vectors for ``data``, computed once and kept as ``.npy`` files.

    Returns:
        ``(corpus, queries)``: float32 unit-vector matrices in the data set's order.
    """
    folder = embedding_folder(data, cache, model)
    paths = folder / "corpus.npy", folder / "queries.npy"
    if all(p.is_file() for p in paths):
        corpus, queries = (np.load(p) for p in paths)
        if corpus.shape[0] == len(data.texts) and queries.shape[0] == len(data.queries):
            return corpus, queries
    log(f"embedding {data.name}: {len(data.texts)} passages, {len(data.queries)} queries")
    started = time.perf_counter()
    corpus = np.asarray(embed(data.texts), np.float32)
    queries = np.asarray(embed(data.queries), np.float32)
    log(f"embedded {data.name} in {time.perf_counter() - started:.1f} s")
    folder.mkdir(parents=True, exist_ok=True)
    for path, matrix in zip(paths, (corpus, queries), strict=True):
        partial = path.with_suffix(".part.npy")
        np.save(partial, matrix)
        partial.replace(path)
    return corpus, queries


def _ndcg(ranked: Sequence[str], judged: dict[str, int], k: int) -> float:
    # Linear gains and log2 discounts, as trec_eval's ndcg_cut (what BEIR reports).
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def evaluate(rankings: dict[str, Sequence[str]], data: Beir, k: int = K) -> dict[str, float | int]:
    """nDCG@k, Recall@k and MRR@k averaged over the judged queries.

    A judged query missing from ``rankings`` counts as an empty result.
    """
    ndcg = recall = mrr = 0.0
    queries = data.judged
    for qid in queries:
        judged = data.qrels[qid]
        ranked = list(dict.fromkeys(rankings.get(qid, ())))[:k]
        relevant = {d for d, g in judged.items() if g > 0}
        ndcg += _ndcg(ranked, judged, k)
        recall += len(relevant.intersection(ranked)) / len(relevant)
        first = next((i for i, d in enumerate(ranked) if d in relevant), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
    n = max(len(queries), 1)
    return {
        f"ndcg@{k}": round(ndcg / n, 4),
        f"recall@{k}": round(recall / n, 4),
        f"mrr@{k}": round(mrr / n, 4),
        "queries": len(queries),
    }


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50, p95 and mean of per-query latencies, in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    if ms.size == 0:
        return {"n": 0}
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "n": int(ms.size),
    }


def timed_rounds(
    search: Callable[[int], object], queries: int, *, rounds: int, warmup: int = 50
) -> list[float]:
    """Time ``search(i)`` for every query index, ``rounds`` times, after ``warmup`` searches."""
    for i in range(min(warmup, queries)):
        search(i)
    samples: list[float] = []
    clock = time.perf_counter
    for _ in range(rounds):
        for i in range(queries):
            began = clock()
            search(i)
            samples.append(clock() - began)
    return samples
