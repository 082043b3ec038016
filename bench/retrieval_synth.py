"""Synthetic corpora for the large sizes of bench/retrieval.py: Zipf text, random unit vectors.

Text is drawn from a pseudo-word vocabulary with Zipf-Mandelbrot frequencies (a few very
common words, a long tail), 40 to 159 words per chunk; vectors are random unit vectors.
Each query takes six word occurrences of one chunk and a noisy copy of its vector
(cosine about 0.7), so both engines have real matches to find. Everything is generated
from a fixed seed and kept under the cache folder as ``.npy`` files, memory-mapped on reuse.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Synthetic", "synthetic"]

VOCAB = 60_000
ZIPF_S = 1.0
ZIPF_Q = 2.7
MIN_WORDS, MAX_WORDS = 40, 160
QUERY_WORDS = 6
BLOCK = 100_000
VERSION = 2
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def vocabulary() -> np.ndarray:
    """Pseudo-words, shortest first, so frequent ranks get short words as in real text."""
    words: list[str] = []
    for length in itertools.count(2):
        for parts in itertools.product(_SYLLABLES, repeat=length):
            words.append("".join(parts))
            if len(words) == VOCAB:
                return np.array(words)
    raise AssertionError("unreachable")


@dataclass
class Synthetic:
    """A generated corpus of ``size`` chunks and its queries."""

    size: int
    tokens: np.ndarray
    offsets: np.ndarray
    """Chunk ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``."""
    vectors: np.ndarray
    query_texts: list[str]
    query_vectors: np.ndarray
    words: np.ndarray

    def texts(self, start: int, stop: int) -> list[str]:
        """The chunk texts ``start`` to ``stop - 1``."""
        words, tokens, offsets = self.words, self.tokens, self.offsets
        return [" ".join(words[tokens[offsets[i] : offsets[i + 1]]]) for i in range(start, stop)]


def _generate(folder: Path, size: int, dim: int, queries: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ranks = np.arange(VOCAB, dtype=np.float64)
    weights = 1.0 / (ranks + ZIPF_Q) ** ZIPF_S
    cdf = np.cumsum(weights / weights.sum())
    lengths = rng.integers(MIN_WORDS, MAX_WORDS, size)
    offsets = np.zeros(size + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.lib.format.open_memmap(
        folder / "tokens.npy", mode="w+", dtype=np.uint32, shape=(int(offsets[-1]),)
    )
    step = 10_000_000
    for start in range(0, tokens.size, step):
        stop = min(start + step, tokens.size)
        tokens[start:stop] = np.searchsorted(cdf, rng.random(stop - start), side="right")
    tokens.flush()
    vectors = np.lib.format.open_memmap(
        folder / "vectors.npy", mode="w+", dtype=np.float32, shape=(size, dim)
    )
    for start in range(0, size, BLOCK):
        block = rng.standard_normal((min(BLOCK, size - start), dim), dtype=np.float32)
        vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    vectors.flush()
    words = vocabulary()
    texts: list[str] = []
    sources: list[int] = []
    while len(texts) < queries:
        j = int(rng.integers(size))
        # Words as they occur in the chunk: common words as often as in its text, like the
        # function words of a real question, which make long posting lists to merge.
        own = tokens[offsets[j] : offsets[j + 1]]
        chosen = list(dict.fromkeys(rng.choice(own, QUERY_WORDS, replace=False).tolist()))
        text = " ".join(words[chosen])
        if text not in texts:  # queries are looked up by text
            texts.append(text)
            sources.append(j)
    noise = rng.standard_normal((queries, dim), dtype=np.float32) / np.sqrt(dim)
    qv = np.asarray(vectors[sources]) + noise
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    np.save(folder / "offsets.npy", offsets)
    np.save(folder / "query_vectors.npy", qv.astype(np.float32))
    (folder / "queries.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")


def synthetic(
    cache: Path,
    size: int,
    *,
    dim: int = 384,
    queries: int = 200,
    seed: int = 7,
    log: Callable[[str], object] = print,
) -> Synthetic:
    """Load the synthetic corpus of ``size`` chunks from the cache, generating it once."""
    folder = cache / "synthetic" / f"v{VERSION}-n{size}-d{dim}-q{queries}-s{seed}"
    done = folder / ".done"
    if not done.exists():
        log(f"generating a synthetic corpus of {size:,} chunks in {folder}")
        started = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        _generate(folder, size, dim, queries, seed)
        done.touch()
        log(f"generated in {time.perf_counter() - started:.1f} s")
    return Synthetic(
        size=size,
        tokens=np.load(folder / "tokens.npy", mmap_mode="r"),
        offsets=np.load(folder / "offsets.npy"),
        vectors=np.load(folder / "vectors.npy", mmap_mode="r"),
        query_texts=(folder / "queries.txt").read_text(encoding="utf-8").splitlines(),
        query_vectors=np.load(folder / "query_vectors.npy"),
        words=vocabulary(),
    )
