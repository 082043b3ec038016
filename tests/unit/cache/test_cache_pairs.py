"""The paraphrase / near-miss set the cache's thresholds are calibrated on."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from app.cache.agreement import key_terms

PAIRS = Path(__file__).resolve().parents[3] / "evals" / "datasets" / "cache_pairs.jsonl"


def test_the_set_has_paraphrases_and_near_misses_of_every_kind() -> None:
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    labels = Counter(r["label"] for r in rows)
    assert set(labels) == {"paraphrase", "near_miss"}
    assert labels["paraphrase"] >= 30 and labels["near_miss"] >= 40
    kinds = {r["kind"] for r in rows if r["label"] == "near_miss"}
    assert {"entity", "number", "negation", "term", "order"} <= kinds
    assert all(r["stored"] != r["asked"] for r in rows)
    assert len({(r["stored"], r["asked"]) for r in rows}) == len(rows)
    # A near miss by number really differs in a number.
    for row in rows:
        if row["kind"] == "number":
            assert key_terms(row["stored"]) != key_terms(row["asked"])
