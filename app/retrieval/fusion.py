"""Fusion of ranked result lists: weighted reciprocal rank, or normalised scores."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Literal

from app.retrieval.types import Hit

__all__ = ["Fusion", "fuse", "normalized_fusion", "rrf"]

Fusion = Literal["rrf", "minmax", "zscore"]


def _weights(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking is required")
    return list(weights)


def _combine(
    rankings: Sequence[Sequence[Hit]],
    weights: Sequence[float],
    score: Callable[[Sequence[Hit]], list[float]],
) -> list[Hit]:
    """Sum ``weight * score`` per chunk, where ``score`` rates a whole list at once."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for hit, value in zip(ranking, score(ranking), strict=True):
            cid = hit.chunk.chunk_id
            first.setdefault(cid, hit)
            scores[cid] = scores.get(cid, 0.0) + weight * value
    # Stable sort: ties keep the order of first appearance.
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [Hit(first[cid].chunk, scores[cid]) for cid in order]


def rrf(
    rankings: Sequence[Sequence[Hit]], *, k: int = 60, weights: Sequence[float] | None = None
) -> list[Hit]:
    """Fuse rankings with weighted reciprocal rank fusion.

    Each chunk scores ``sum(weight_i / (k + rank_i))`` over the lists it appears
    in (ranks start at 1). Ties keep the order of first appearance.

    Args:
        rankings: Result lists, each best first.
        k: The RRF constant; larger values flatten the rank curve.
        weights: One weight per list; all 1.0 when omitted.

    Returns:
        Hits with their fused score, best first.
    """

    def reciprocal(ranking: Sequence[Hit]) -> list[float]:
        return [1.0 / (k + rank) for rank in range(1, len(ranking) + 1)]

    return _combine(rankings, _weights(rankings, weights), reciprocal)


def normalized_fusion(
    rankings: Sequence[Sequence[Hit]],
    *,
    method: Literal["minmax", "zscore"] = "minmax",
    weights: Sequence[float] | None = None,
) -> list[Hit]:
    """Fuse by each engine's own scores, normalised per list, then weighted and summed.

    ``minmax`` maps a list's scores to [0, 1] (all equal -> 1); ``zscore`` centres them
    on the list's mean in units of its standard deviation (one item or no spread -> 0).
    A chunk missing from a list gets nothing from it.

    Args:
        rankings: Result lists, each best first, with higher-is-better scores.
        method: The normalisation.
        weights: One weight per list; all 1.0 when omitted.

    Returns:
        Hits with their fused score, best first.
    """

    def scaled(ranking: Sequence[Hit]) -> list[float]:
        values = [h.score for h in ranking]
        if not values:
            return []
        if method == "minmax":
            low, high = min(values), max(values)
            return [1.0 if high == low else (v - low) / (high - low) for v in values]
        mean = statistics.fmean(values)
        spread = statistics.pstdev(values)
        return [0.0 if spread == 0 else (v - mean) / spread for v in values]

    return _combine(rankings, _weights(rankings, weights), scaled)


def fuse(
    rankings: Sequence[Sequence[Hit]],
    *,
    method: Fusion = "rrf",
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[Hit]:
    """Fuse with the configured method (see :func:`rrf` and :func:`normalized_fusion`)."""
    if method == "rrf":
        return rrf(rankings, k=k, weights=weights)
    return normalized_fusion(rankings, method=method, weights=weights)
