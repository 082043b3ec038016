"""The held-out paraphrase / near-miss sets, written apart from the agreement rules."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[3] / "evals" / "datasets"
FIELDS = {"stored", "asked", "label", "kind"}
NEAR_MISS_KINDS = {"entity", "number", "negation", "term", "order"}
# Numbers as digits or words: a near miss by number may say "second season".
NUMERAL = re.compile(
    r"\d+(?:\.\d+)*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|first|second|"
    r"third|twice|double|triple)\b",
    re.IGNORECASE,
)


def _rows(name: str) -> list[dict[str, str]]:
    lines = (DATASETS / name).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize(
    ("name", "least"),
    [
        ("cache_pairs_heldout.jsonl", 80),
        ("cache_pairs_heldout2.jsonl", 30),
        ("cache_pairs_heldout3.jsonl", 40),
    ],
)
def test_a_heldout_set_is_well_formed(name: str, least: int) -> None:
    rows = _rows(name)
    assert len(rows) >= least
    assert all(set(r) == FIELDS and all(isinstance(v, str) and v for v in r.values()) for r in rows)
    labels = Counter(r["label"] for r in rows)
    assert set(labels) == {"paraphrase", "near_miss"}
    # About half and half.
    assert min(labels.values()) >= 0.35 * len(rows)
    assert NEAR_MISS_KINDS <= {r["kind"] for r in rows if r["label"] == "near_miss"}
    assert all(r["stored"] != r["asked"] for r in rows)
    assert len({(r["stored"], r["asked"]) for r in rows}) == len(rows)
    for row in rows:
        if row["kind"] == "number":
            numerals = [
                {m.group(0).lower() for m in NUMERAL.finditer(row[side])}
                for side in ("stored", "asked")
            ]
            assert numerals[0] != numerals[1], row


def test_the_heldout_sets_share_no_pair_with_the_first_set() -> None:
    first = {(r["stored"], r["asked"]) for r in _rows("cache_pairs.jsonl")}
    names = (
        "cache_pairs_heldout.jsonl",
        "cache_pairs_heldout2.jsonl",
        "cache_pairs_heldout3.jsonl",
    )
    for name in names:
        assert not first & {(r["stored"], r["asked"]) for r in _rows(name)}
    # Each held-out set asks about stored questions of its own.
    stored = [{r["stored"] for r in _rows(name)} for name in names]
    for i, one in enumerate(stored):
        for other in stored[i + 1 :]:
            assert not one & other
