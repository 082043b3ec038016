"""Known rankings give the nDCG, recall and MRR values worked out by hand below."""

from __future__ import annotations

import math

import pytest

from app.evals.ranking_metrics import METRICS, Judge

# Graded judgements: gain = grade (trec_eval's linear nDCG); grade 0 is judged not relevant.
QRELS = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"x": 1, "y": 1}}
FILLER = [f"n{i}" for i in range(10)]


def _dcg(gains: list[int]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, 1))


def test_known_rankings_give_hand_computed_values() -> None:
    rankings = {
        "q1": ["c", "a", "z", "b"],  # gains 0, 2, 0, 1
        "q2": ["y", *FILLER, "x"],  # y at 1, x at 12: outside the top 10
    }
    scores = Judge(QRELS).scores(rankings)

    q1_ndcg = (2 / math.log2(3) + 1 / math.log2(5)) / (2 + 1 / math.log2(3))
    assert q1_ndcg == pytest.approx(_dcg([0, 2, 0, 1]) / _dcg([2, 1]))
    assert scores.per_query["q1"] == pytest.approx(
        {"ndcg@10": q1_ndcg, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 0.5}
    )
    q2_ndcg = 1 / (1 + 1 / math.log2(3))
    assert scores.per_query["q2"] == pytest.approx(
        {"ndcg@10": q2_ndcg, "recall@10": 0.5, "recall@100": 1.0, "mrr@10": 1.0}
    )
    assert scores.mean == pytest.approx(
        {"ndcg@10": (q1_ndcg + q2_ndcg) / 2, "recall@10": 0.75, "recall@100": 1.0, "mrr@10": 0.75}
    )
    assert tuple(scores.mean) == METRICS


def test_the_given_order_counts_not_the_ids() -> None:
    judge = Judge({"q": {"b": 1}})
    assert judge.scores({"q": ["b", "a"]}).mean["mrr@10"] == 1.0
    assert judge.scores({"q": ["a", "b"]}).mean["mrr@10"] == 0.5  # tied scores would put "b" first


def test_mrr_is_cut_at_ten_and_recall_at_a_hundred() -> None:
    judge = Judge({"q": {"x": 1}})
    at_11 = judge.scores({"q": [*FILLER, "x"]}).mean
    assert at_11["mrr@10"] == 0.0 and at_11["recall@10"] == 0.0 and at_11["recall@100"] == 1.0
    deep = [f"n{i}" for i in range(100)] + ["x"]
    assert judge.scores({"q": deep}).mean["recall@100"] == 0.0


def test_a_judged_query_without_results_scores_zero_and_counts() -> None:
    scores = Judge(QRELS).scores({"q1": ["a", "b"]})  # nothing for q2; q3 is not judged
    assert scores.per_query["q1"]["ndcg@10"] == pytest.approx(1.0)
    assert scores.per_query["q2"] == {m: 0.0 for m in METRICS}
    assert scores.mean["ndcg@10"] == pytest.approx(0.5)
    assert set(Judge(QRELS).scores({"q3": ["a"]}).per_query) == {"q1", "q2"}


def test_fast_ndcg_path_agrees_and_bad_rankings_are_refused() -> None:
    judge = Judge(QRELS)
    rankings = {"q1": ["b", "a"], "q2": ["x"]}
    assert judge.ndcg10(rankings) == pytest.approx(
        {q: v["ndcg@10"] for q, v in judge.scores(rankings).per_query.items()}
    )
    with pytest.raises(ValueError, match="must not repeat"):
        judge.scores({"q1": ["a", "a"]})
    with pytest.raises(ValueError, match="no judged queries"):
        Judge({})
