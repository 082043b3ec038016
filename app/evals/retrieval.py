"""``ragent eval retrieval``: BM25 only, dense only and hybrid, scored on a BEIR set."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from app.evals.beir import BeirDataset
from app.evals.index import EvalIndex, corpus_ids, temporary_index
from app.evals.params import FusionParams
from app.evals.ranking_metrics import METRICS, Judge, Scores
from app.retrieval.types import Hit
from app.settings import Settings

__all__ = ["DEPTH", "MODES", "Candidates", "RetrievalReport", "candidates", "evaluate_retrieval"]

MODES = ("bm25", "dense", "hybrid")
DEPTH = 100
"""Results ranked per query: enough for Recall@100."""


@dataclass(frozen=True)
class Candidates:
    """Each judged query's results from each engine alone, best first."""

    dense: dict[str, list[Hit]]
    keyword: dict[str, list[Hit]]


def candidates(index: EvalIndex, dataset: BeirDataset, depth: int) -> Candidates:
    """Search every judged query on each engine alone, ``depth`` results deep."""
    dense: dict[str, list[Hit]] = {}
    keyword: dict[str, list[Hit]] = {}
    for qid in dataset.judged:
        query = dataset.queries[qid]
        dense[qid] = index.dense(query, depth)
        keyword[qid] = index.keyword(query, depth)
    return Candidates(dense=dense, keyword=keyword)


async def _hybrid(index: EvalIndex, dataset: BeirDataset) -> dict[str, list[str]]:
    return {
        qid: corpus_ids(await index.hybrid(dataset.queries[qid], DEPTH)) for qid in dataset.judged
    }


@dataclass(frozen=True)
class RetrievalReport:
    """Scores of each retrieval mode on one dataset."""

    dataset: str
    documents: int
    queries: int
    """Judged queries, the ones scored."""
    hybrid: FusionParams
    rerank: str
    """The configured reranker applied after fusion (``none``: fusion only)."""
    scores: dict[str, Scores]
    """Per mode: ``bm25``, ``dense``, ``hybrid``."""
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """The report as one JSON-ready object (means only)."""
        return {
            "dataset": self.dataset,
            "documents": self.documents,
            "queries": self.queries,
            "depth": DEPTH,
            "hybrid": self.hybrid.as_dict(),
            "rerank": self.rerank,
            "metrics": {mode: self.scores[mode].mean for mode in MODES},
            "seconds": self.seconds,
        }

    def table(self) -> str:
        """The report as a plain-text table."""
        rerank = "" if self.rerank == "none" else f", reranked by {self.rerank}"
        header = f"{'mode':<8}" + "".join(f"{m:>12}" for m in METRICS)
        rows = [
            f"{mode:<8}" + "".join(f"{self.scores[mode].mean[m]:>12.3f}" for m in METRICS)
            for mode in MODES
        ]
        return "\n".join(
            [
                f"{self.dataset}: {self.documents} documents, {self.queries} judged queries",
                header,
                *rows,
                f"hybrid: {self.hybrid.describe()}{rerank} (Recall@100 is bounded by the depths)",
                f"indexed in {self.seconds['index']:.1f} s, searched in "
                f"{self.seconds['search']:.1f} s",
            ]
        )


def evaluate_retrieval(
    settings: Settings, dataset: BeirDataset, *, progress: bool | None = None
) -> RetrievalReport:
    """Index ``dataset`` into a temporary store and score every retrieval mode.

    Args:
        settings: The engines, embedder and fusion under evaluation.
        dataset: The BEIR set; only judged queries are run and scored.
        progress: Show a progress bar on stderr while indexing (None: when it is a terminal).

    Returns:
        nDCG@10, Recall@10, Recall@100 and MRR@10 for bm25, dense and hybrid.
    """
    judge = Judge({qid: dataset.qrels[qid] for qid in dataset.judged})
    with temporary_index(settings, dataset, progress=progress) as index:
        started = time.perf_counter()
        found = candidates(index, dataset, DEPTH)
        hybrid = asyncio.run(_hybrid(index, dataset))
        searched = time.perf_counter() - started
        indexed = index.seconds
    rankings = {
        "bm25": {qid: corpus_ids(hits) for qid, hits in found.keyword.items()},
        "dense": {qid: corpus_ids(hits) for qid, hits in found.dense.items()},
        "hybrid": hybrid,
    }
    return RetrievalReport(
        dataset=dataset.name,
        documents=len(dataset.corpus),
        queries=len(dataset.judged),
        hybrid=FusionParams.from_settings(settings.retrieval),
        rerank=settings.rerank.provider,
        scores={mode: judge.scores(rankings[mode]) for mode in MODES},
        seconds={"index": round(indexed, 3), "search": round(searched, 3)},
    )
