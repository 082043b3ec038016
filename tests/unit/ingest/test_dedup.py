from __future__ import annotations

import random
import re
import time

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH  # type: ignore[import-untyped]

from app.ingest.dedup import Deduplicator, MinHasher, Verdict

_VOCAB = (
    "the a of to and in is was for on with as by at from this that which table index query "
    "vacuum page row column tuple writer reader lock commit transaction log checkpoint file "
    "server client cache buffer memory disk storage plan cost scan join sort hash merge node"
).split()


def _text(seed: int, words: int = 200) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_VOCAB) + str(rng.randrange(50)) for _ in range(words)) + "."


def _replace_words(text: str, *positions: int) -> str:
    words = text.split(" ")
    for p in positions:
        words[p] = "paraphrased"
    return " ".join(words)


def _true_jaccard(a: str, b: str) -> float:
    def shingles(t: str) -> set[tuple[str, ...]]:
        w = re.findall(r"\w+", t.casefold())
        return {tuple(w[i : i + 3]) for i in range(len(w) - 2)}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def test_exact_duplicate_first_wins() -> None:
    dedup = Deduplicator()
    text = _text(1)
    assert dedup.check("a", text) == Verdict("a", True)
    assert dedup.check("b", text) == Verdict("b", False, "a", "exact")
    assert dedup.check("c", text + " ").kept is False  # differs in bytes: caught as near
    assert (dedup.stats.kept, dedup.stats.exact, dedup.stats.near) == (1, 1, 1)
    assert len(dedup) == 1


def test_one_word_paraphrase_is_a_near_duplicate_and_unrelated_text_is_not() -> None:
    dedup = Deduplicator()
    original = _text(2)
    copy = _replace_words(original, 100)
    assert _true_jaccard(original, copy) == pytest.approx(195 / 201)
    assert dedup.check("doc1", original).kept
    verdict = dedup.check("doc2", copy)
    assert not verdict.kept and verdict.duplicate_of == "doc1"
    assert verdict.reason is not None and verdict.reason.startswith("near:")
    assert float(verdict.reason.split(":")[1]) == pytest.approx(195 / 201, abs=0.05)
    assert dedup.check("doc3", _text(3)) == Verdict("doc3", True)
    assert dedup.check("doc4", _replace_words(_text(3), 7)).duplicate_of == "doc3"


def test_threshold_is_configurable() -> None:
    original = _text(4)
    copy = _replace_words(original, 50, 150)  # true Jaccard 189/207 = 0.913
    strict, loose = Deduplicator(threshold=0.99), Deduplicator(threshold=0.8)
    assert strict.check("a", original).kept and strict.check("b", copy).kept
    assert loose.check("a", original).kept and not loose.check("b", copy).kept
    with pytest.raises(ValueError, match="threshold"):
        Deduplicator(threshold=0.0)


def test_near_detection_can_be_turned_off() -> None:
    dedup = Deduplicator(near=False)
    original = _text(5)
    assert dedup.check("a", original).kept
    assert dedup.check("b", _replace_words(original, 3)).kept
    assert dedup.check("c", original).reason == "exact"


def test_chunks_across_documents_and_seeding() -> None:
    shared = _text(6, 120)
    dedup = Deduplicator()
    dedup.add("old#0", shared)  # e.g. a chunk indexed by an earlier run
    verdicts = dedup.check_many(
        [("new#0", _text(7, 120)), ("new#1", shared), ("new#2", _replace_words(shared, 60))]
    )
    assert [v.kept for v in verdicts] == [True, False, False]
    assert [v.duplicate_of for v in verdicts] == [None, "old#0", "old#0"]


def test_memory_is_bounded_by_max_items() -> None:
    dedup = Deduplicator(max_items=2)
    texts = [_text(10 + i) for i in range(4)]
    for i, text in enumerate(texts):
        assert dedup.check(str(i), text).kept
    assert dedup.stats.unindexed == 2
    assert dedup.check("x", _replace_words(texts[0], 9)).duplicate_of == "0"
    assert dedup.check("y", _replace_words(texts[3], 9)).kept  # not indexed: not found
    assert dedup.check("z", texts[3]).reason == "exact"  # exact matching goes on
    assert dedup._signatures.shape[0] == 2


def test_texts_without_words() -> None:
    dedup = Deduplicator()
    assert dedup.check("a", "--- ...").kept
    assert dedup.check("b", "*** !!!").kept
    assert dedup.check("c", "--- ...").reason == "exact"


@pytest.mark.parametrize("words", [1, 2, 200, 9000])  # 9000: several blocks of shingles
def test_signatures_equal_datasketch_minhash(words: int) -> None:
    hasher = MinHasher(num_perm=64, seed=3)
    text = _text(20, words)
    reference = MinHash(num_perm=64, seed=3, scheme="affine32", hashfunc=int)
    reference.update_batch([int(h) for h in hasher.shingle_hashes(text)])
    assert len(hasher.shingle_hashes(text)) == max(1, words - 2)
    values = hasher.hashvalues(text)
    assert values is not None and np.array_equal(values, reference.hashvalues)


def test_signatures_estimate_jaccard_and_work_with_datasketch_lsh() -> None:
    hasher = MinHasher(num_perm=256, seed=3)
    text = _text(20)
    a, b = hasher.minhash(text), hasher.minhash(_replace_words(text, *range(0, 200, 20)))
    assert a is not None and b is not None
    truth = _true_jaccard(text, _replace_words(text, *range(0, 200, 20)))
    assert a.jaccard(b) == pytest.approx(truth, abs=0.08)
    lsh = MinHashLSH(threshold=0.5, num_perm=256)
    lsh.insert("a", a)
    assert lsh.query(b) == ["a"]
    assert hasher.minhash("  ") is None


def test_minhash_of_a_500_token_chunk_is_fast() -> None:
    hasher = MinHasher()
    chunks = [_text(100 + i, 380) for i in range(200)]  # ~500 word pieces each
    started = time.perf_counter()
    for chunk in chunks:
        hasher.hashvalues(chunk)
    per_chunk = (time.perf_counter() - started) / len(chunks)
    assert per_chunk < 0.005  # measured ~0.2 ms; loose for busy CI machines
