"""``ragent tune``: search the hybrid retriever's fusion parameters for the best nDCG@10.

Each query's candidate lists are retrieved once, at the deepest depth searched, and
every parameter set is fused offline with the retriever's own fusion code, so the
search costs one retrieval per query and engine. With several datasets the objective
is the mean of their nDCG@10, each dataset counting once.

A parameter set qualifies only if, on every dataset, its hybrid nDCG@10 is not below that of
the better single engine (BM25 or dense) there by more than noise: :data:`NOISE_SE`
standard errors of the per-query difference. Defaults chosen on the mean alone could give
one dataset away for gains on another; this keeps hybrid a safe default everywhere. When no
set qualifies, the best mean wins.

The parameters are chosen on the very queries they are scored on, so the tuned score
is optimistic. k-fold cross-validation estimates what they are worth on unseen
queries: each fold is scored with parameters chosen on the other folds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.evals.beir import BeirDataset
from app.evals.index import corpus_ids, temporary_index
from app.evals.params import FusionParams
from app.evals.ranking_metrics import Judge
from app.evals.retrieval import Candidates, candidates
from app.settings import Settings

__all__ = [
    "DEPTHS",
    "NOISE_SE",
    "RATIOS",
    "RRF_KS",
    "SetResult",
    "TuneReport",
    "TuneSet",
    "grid",
    "prepare",
    "tune",
]

RRF_KS = (1, 5, 10, 20, 40, 60, 100)
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0)
"""keyword_weight / dense_weight; the larger of the two weights is 1."""
DEPTHS = (10, 20, 30, 50, 100)
NOISE_SE = 2.0
"""How far (in standard errors of the per-query difference) hybrid may fall below the better
single engine on a dataset and still count as no worse: less is within noise."""


def _weights(ratio: float) -> tuple[float, float]:
    return (1.0, ratio) if ratio <= 1 else (round(1 / ratio, 4), 1.0)


def grid(default: FusionParams) -> list[FusionParams]:
    """Every parameter set searched, ``default`` first so that it wins ties."""
    found = [default]
    for (fusion, k), ratio, dense_depth, keyword_depth in itertools.product(
        [("rrf", k) for k in RRF_KS] + [("minmax", default.rrf_k), ("zscore", default.rrf_k)],
        RATIOS,
        DEPTHS,
        DEPTHS,
    ):
        dense_weight, keyword_weight = _weights(ratio)
        params = FusionParams(
            fusion=fusion,  # type: ignore[arg-type]  # a literal from the list above
            rrf_k=k,
            dense_weight=dense_weight,
            keyword_weight=keyword_weight,
            dense_depth=dense_depth,
            keyword_depth=keyword_depth,
        )
        if params != default:
            found.append(params)
    return found


@dataclass(frozen=True)
class TuneSet:
    """One dataset's judgements and candidate lists, retrieved once at the deepest depth."""

    name: str
    judge: Judge
    candidates: Candidates

    def ndcg(self, params: FusionParams) -> list[float]:
        """Per-query nDCG@10 of hybrid retrieval with ``params``, in ``judge.queries`` order."""
        c = self.candidates
        rankings = {
            qid: corpus_ids(params.fuse(c.dense[qid], c.keyword[qid], 10))
            for qid in self.judge.queries
        }
        scores = self.judge.ndcg10(rankings)
        return [scores[qid] for qid in self.judge.queries]

    def single(self, engine: str) -> float:
        """Mean nDCG@10 of one engine alone (``dense`` or ``keyword``)."""
        return float(np.mean(self.single_scores(engine)))

    def single_scores(self, engine: str) -> list[float]:
        """Per-query nDCG@10 of one engine alone, in ``judge.queries`` order."""
        lists = self.candidates.dense if engine == "dense" else self.candidates.keyword
        scores = self.judge.ndcg10({qid: corpus_ids(lists[qid]) for qid in self.judge.queries})
        return [scores[qid] for qid in self.judge.queries]


def prepare(settings: Settings, dataset: BeirDataset, *, progress: bool | None = None) -> TuneSet:
    """Index ``dataset`` with the configured engines and retrieve its candidate lists once.

    Lists are as deep as the deepest searched depth, or the configured one if deeper.
    """
    default = FusionParams.from_settings(settings.retrieval)
    depth = max(*DEPTHS, default.dense_depth, default.keyword_depth)
    with temporary_index(settings, dataset, progress=progress) as index:
        found = candidates(index, dataset, depth)
    judge = Judge({qid: dataset.qrels[qid] for qid in dataset.judged})
    return TuneSet(name=dataset.name, judge=judge, candidates=found)


@dataclass(frozen=True)
class SetResult:
    """The figures of one dataset."""

    name: str
    queries: int
    bm25: float
    dense: float
    default: float
    tuned: float
    cross_validated: float | None
    best_single: str = "dense"
    """The better engine alone on this dataset: ``bm25`` or ``dense``."""
    within_noise: bool = True
    """Whether the tuned hybrid is no worse than ``best_single`` by more than noise."""


@dataclass(frozen=True)
class TuneReport:
    """What the search found, over every dataset."""

    default: FusionParams
    best: FusionParams
    sets: list[SetResult]
    searched: int
    folds: int
    """0 when cross-validation was off or impossible."""

    @property
    def default_score(self) -> float:
        """Mean over datasets of hybrid nDCG@10 with the configured parameters."""
        return float(np.mean([s.default for s in self.sets]))

    @property
    def tuned_score(self) -> float:
        """The same with the best parameters (measured on the queries they were chosen on)."""
        return float(np.mean([s.tuned for s in self.sets]))

    @property
    def cross_validated_score(self) -> float | None:
        """The same, each fold scored with parameters chosen on the other folds."""
        values = [s.cross_validated for s in self.sets if s.cross_validated is not None]
        return float(np.mean(values)) if len(values) == len(self.sets) else None

    def as_dict(self) -> dict[str, Any]:
        """The report as one JSON-ready object."""
        cv = self.cross_validated_score
        return {
            "default": {"params": self.default.as_dict(), "ndcg@10": self.default_score},
            "tuned": {"params": self.best.as_dict(), "ndcg@10": self.tuned_score},
            "gain": self.tuned_score - self.default_score,
            "cross_validated": None
            if cv is None
            else {"folds": self.folds, "ndcg@10": cv, "gain": cv - self.default_score},
            "datasets": [vars(s) for s in self.sets],
            "searched": self.searched,
        }


def _folds(count: int, folds: int, seed: int) -> list[int]:
    order = list(range(count))
    random.Random(seed).shuffle(order)
    assignment = [0] * count
    for position, query in enumerate(order):
        assignment[query] = position % folds
    return assignment


def _within_noise(
    matrix: npt.NDArray[np.float64], floor: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Per parameter set: is its mean over ``mask`` within noise of ``floor``'s, or above?"""
    diff = matrix[:, mask] - floor[mask]
    count = diff.shape[1]
    spread = diff.std(axis=1, ddof=1) / np.sqrt(count) if count > 1 else np.zeros(len(diff))
    return np.asarray(np.round(diff.mean(axis=1) + NOISE_SE * spread, 9) >= 0)


def _best(
    matrices: Sequence[npt.NDArray[np.float64]],
    masks: Sequence[npt.NDArray[np.bool_]],
    floors: Sequence[npt.NDArray[np.float64]],
) -> int:
    """The index of the best qualifying parameter set by mean over datasets (earliest on ties).

    ``floors`` holds each dataset's per-query scores of its better single engine.
    """
    objective = np.mean(
        [m[:, mask].mean(axis=1) for m, mask in zip(matrices, masks, strict=True)], axis=0
    )
    qualified = np.all(
        [_within_noise(m, f, mask) for m, f, mask in zip(matrices, floors, masks, strict=True)],
        axis=0,
    )
    if qualified.any():
        objective = np.where(qualified, objective, -np.inf)
    # Rounding makes sums that differ only by float noise tie, so the earlier set wins.
    return int(np.argmax(np.round(objective, 9)))


def tune(
    sets: Sequence[TuneSet],
    default: FusionParams,
    *,
    folds: int = 5,
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
) -> TuneReport:
    """Search :func:`grid` for the parameters with the best mean hybrid nDCG@10.

    Only parameter sets within noise of the better single engine on every dataset qualify
    (see :data:`NOISE_SE`); with none, the best mean wins.

    Args:
        sets: The datasets, with candidates retrieved at least ``max(DEPTHS)`` deep and at
            least as deep as ``default``'s depths.
        default: The configured parameters, reported as the baseline and kept on ties.
        folds: Folds of query cross-validation (capped by the smallest dataset's query
            count); below 2, no cross-validation.
        seed: Seeds the assignment of queries to folds.
        on_step: Called with no arguments after each parameter set is scored (progress).

    Returns:
        The default, the best parameters, and per-dataset figures.
    """
    searched = grid(default)
    matrices = [np.zeros((len(searched), len(s.judge.queries))) for s in sets]
    for row, params in enumerate(searched):
        for matrix, tune_set in zip(matrices, sets, strict=True):
            matrix[row] = tune_set.ndcg(params)
        if on_step is not None:
            on_step()
    singles = [(s.single_scores("keyword"), s.single_scores("dense")) for s in sets]
    better = ["bm25" if np.mean(kw) > np.mean(dense) else "dense" for kw, dense in singles]
    floors = [
        np.array(kw if name == "bm25" else dense)
        for (kw, dense), name in zip(singles, better, strict=True)
    ]
    everything = [np.ones(m.shape[1], bool) for m in matrices]
    best = _best(matrices, everything, floors)
    folds = min(folds, *(m.shape[1] for m in matrices))
    held_out: list[npt.NDArray[np.float64] | None] = [None] * len(sets)
    if folds >= 2:
        assignments = [np.array(_folds(m.shape[1], folds, seed)) for m in matrices]
        held = [np.zeros(m.shape[1]) for m in matrices]
        for fold in range(folds):
            chosen = _best(matrices, [a != fold for a in assignments], floors)
            for scores, matrix, assignment in zip(held, matrices, assignments, strict=True):
                scores[assignment == fold] = matrix[chosen, assignment == fold]
        held_out = list(held)
    results = [
        SetResult(
            name=s.name,
            queries=m.shape[1],
            bm25=s.single("keyword"),
            dense=s.single("dense"),
            default=float(m[0].mean()),
            tuned=float(m[best].mean()),
            cross_validated=None if h is None else float(h.mean()),
            best_single=name,
            within_noise=bool(_within_noise(m[best : best + 1], floor, mask)[0]),
        )
        for s, m, h, name, floor, mask in zip(
            sets, matrices, held_out, better, floors, everything, strict=True
        )
    ]
    return TuneReport(
        default=default,
        best=searched[best],
        sets=results,
        searched=len(searched),
        folds=folds if folds >= 2 else 0,
    )
