"""Reciprocal rank fusion of ranked result lists."""

from __future__ import annotations

from collections.abc import Sequence

from app.retrieval.types import Hit

__all__ = ["rrf"]


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
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking is required")
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, hit in enumerate(ranking, start=1):
            cid = hit.chunk.chunk_id
            first.setdefault(cid, hit)
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [Hit(first[cid].chunk, scores[cid]) for cid in order]
