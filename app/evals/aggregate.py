"""A dataset's scores: retrieval over the sources used, means, tags, latency, thresholds."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.evals.dataset import EvalItem
from app.evals.ranking_metrics import Judge
from app.evals.trace import ItemRun

__all__ = [
    "METRIC_ORDER",
    "RETRIEVAL_METRICS",
    "DatasetResult",
    "Miss",
    "check_thresholds",
    "retrieval_scores",
    "summarize",
]

RETRIEVAL_METRICS = ("recall@10", "mrr@10", "ndcg@10")
"""Computed by trec_eval over the documents of the sources the model was given, by rank."""

METRIC_ORDER = (
    *RETRIEVAL_METRICS,
    "citation_precision",
    "answer_f1",
    "exact_match",
    "refusal_accuracy",
    "tool_name_accuracy",
    "tool_args_accuracy",
    "json_validity",
    "safety",
    "judge_correctness",
    "judge_citation_precision",
)
"""Every metric an answers run can report, in display order."""


def _documents(run: ItemRun) -> list[str]:
    return list(dict.fromkeys(s.source for s in run.sources))


def retrieval_scores(
    items: Sequence[EvalItem], runs: Mapping[str, ItemRun]
) -> dict[str, dict[str, float]]:
    """Per item with gold documents: recall@10, MRR@10 and nDCG@10 of its sources' documents.

    The ranking is the documents of the retrieved chunks, in rank order, without repeats.
    """
    judged = {item.id: dict.fromkeys(item.gold_docs, 1) for item in items if item.gold_docs}
    if not judged:
        return {}
    per_query = Judge(judged).scores({qid: _documents(runs[qid]) for qid in judged}).per_query
    return {qid: {m: values[m] for m in RETRIEVAL_METRICS} for qid, values in per_query.items()}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _percentile(values: Sequence[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


@dataclass(frozen=True)
class Miss:
    """A metric below its threshold (``value`` None: it was not measured)."""

    dataset: str
    metric: str
    value: float | None
    threshold: float

    def describe(self) -> str:
        """One line for the console."""
        got = "not measured" if self.value is None else f"{self.value:.3f}"
        return f"{self.dataset}: {self.metric} {got} < {self.threshold:.3f}"


@dataclass
class DatasetResult:
    """One dataset's items, runs, scores and verdict."""

    name: str
    items: list[EvalItem]
    runs: dict[str, ItemRun]
    scores: dict[str, dict[str, float]]
    """Per item id: ``{metric: value}`` for the metrics that apply to it."""
    metrics: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """How many items each metric averages over."""
    by_tag: dict[str, dict[str, float]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: aggregates, thresholds, misses and every item's record and scores."""
        return {
            "name": self.name,
            "items": len(self.items),
            "metrics": self.metrics,
            "counts": self.counts,
            "by_tag": self.by_tag,
            "latency_s": self.latency,
            "thresholds": self.thresholds,
            "passed": not self.misses,
            "misses": [m.describe() for m in self.misses],
            "errors": sum(run.error is not None for run in self.runs.values()),
            "results": [
                {
                    "id": item.id,
                    "question": item.question,
                    "tags": item.tags,
                    "scores": self.scores[item.id],
                    "run": self.runs[item.id].as_dict(),
                }
                for item in self.items
            ],
        }


def _means(scores: Sequence[Mapping[str, float]]) -> tuple[dict[str, float], dict[str, int]]:
    names = [m for m in METRIC_ORDER if any(m in s for s in scores)]
    values = {m: [s[m] for s in scores if m in s] for m in names}
    return {m: _mean(v) for m, v in values.items()}, {m: len(v) for m, v in values.items()}


def summarize(result: DatasetResult) -> DatasetResult:
    """Fill in the means, per-tag means, latency percentiles and missed thresholds."""
    ordered = [result.scores[item.id] for item in result.items]
    result.metrics, result.counts = _means(ordered)
    tags = sorted({tag for item in result.items for tag in item.tags})
    result.by_tag = {
        tag: _means([result.scores[i.id] for i in result.items if tag in i.tags])[0] for tag in tags
    }
    seconds = sorted(run.seconds for run in result.runs.values())
    result.latency = {
        "p50": _percentile(seconds, 50),
        "p95": _percentile(seconds, 95),
        "max": seconds[-1],
        "mean": _mean(seconds),
    }
    result.misses = check_thresholds(result.name, result.metrics, result.thresholds)
    return result


def check_thresholds(
    dataset: str, metrics: Mapping[str, float], thresholds: Mapping[str, float]
) -> list[Miss]:
    """The thresholds that ``metrics`` miss; an unmeasured metric misses its threshold."""
    return [
        Miss(dataset, name, metrics.get(name), floor)
        for name, floor in thresholds.items()
        if name not in metrics or metrics[name] < floor - 1e-12
    ]
