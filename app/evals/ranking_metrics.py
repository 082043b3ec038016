"""Ranking metrics computed by trec_eval (through pytrec_eval), as BEIR reports them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytrec_eval

__all__ = ["METRICS", "Judge", "Scores"]

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
"""The reported metrics, in display order."""

# trec_eval measure -> our name. MRR@10 is trec_eval's reciprocal rank over a run cut
# to 10 results, which is how BEIR defines it.
_MEASURES = {
    "ndcg_cut_10": "ndcg@10",
    "recall_10": "recall@10",
    "recall_100": "recall@100",
    "recip_rank": "mrr@10",
}

Rankings = Mapping[str, Sequence[str]]
"""``{query_id: [corpus_id, ...]}``, best first, no repeats."""


def _run(
    qrels: Mapping[str, object], rankings: Rankings, depth: int
) -> dict[str, dict[str, float]]:
    # trec_eval orders a run by score (and breaks ties by id), not by position, so
    # strictly decreasing scores keep the ranking exactly as given. A query with no
    # results is sent as an empty run, so it scores 0 instead of being left out.
    run: dict[str, dict[str, float]] = {}
    for qid in qrels:
        ranking = list(rankings.get(qid, ()))[:depth]
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"query {qid!r}: a ranking must not repeat a document")
        run[qid] = {doc: float(depth - i) for i, doc in enumerate(ranking)}
    return run


@dataclass(frozen=True)
class Scores:
    """Metric values: the mean over judged queries, and each query's own."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]


class Judge:
    """Scores rankings against one set of graded relevance judgements.

    Gains are the grades (trec_eval's linear nDCG, as in BEIR); a grade of 0 or less is
    not relevant. Every judged query counts, including one that got no results.
    """

    def __init__(self, qrels: Mapping[str, Mapping[str, int]]) -> None:
        """Prepare evaluators for ``qrels`` (``{query_id: {corpus_id: grade}}``)."""
        if not qrels:
            raise ValueError("no judged queries")
        self._qrels = {qid: dict(docs) for qid, docs in qrels.items()}
        self._deep = pytrec_eval.RelevanceEvaluator(
            self._qrels, {"ndcg_cut.10", "recall.10", "recall.100"}
        )
        self._shallow = pytrec_eval.RelevanceEvaluator(self._qrels, {"recip_rank"})
        self._ndcg = pytrec_eval.RelevanceEvaluator(self._qrels, {"ndcg_cut.10"})

    @property
    def queries(self) -> list[str]:
        """The judged query ids."""
        return list(self._qrels)

    def scores(self, rankings: Rankings) -> Scores:
        """Compute every metric of :data:`METRICS` for ``rankings``.

        Args:
            rankings: Each query's ranking, best first; queries without judgements are ignored.

        Returns:
            Means over the judged queries and per-query values.
        """
        deep = self._deep.evaluate(_run(self._qrels, rankings, 100))
        shallow = self._shallow.evaluate(_run(self._qrels, rankings, 10))
        per_query: dict[str, dict[str, float]] = {}
        for qid in self._qrels:
            values = {**deep[qid], **shallow[qid]}
            per_query[qid] = {name: float(values[m]) for m, name in _MEASURES.items()}
        mean = {name: sum(q[name] for q in per_query.values()) / len(per_query) for name in METRICS}
        return Scores(mean=mean, per_query=per_query)

    def ndcg10(self, rankings: Rankings) -> dict[str, float]:
        """Each judged query's nDCG@10 (the cheap path used when searching parameters)."""
        result = self._ndcg.evaluate(_run(self._qrels, rankings, 10))
        return {qid: float(result[qid]["ndcg_cut_10"]) for qid in self._qrels}
