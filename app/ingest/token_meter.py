"""Token counts of word-aligned spans of one text, by prefix sums over per-word counts.

Each distinct word is counted once by the real tokenizer (and cached per tokenizer). For
WordPiece (BERT, MiniLM) the sum is exact, because it never merges across whitespace; a
counter that fails that check (byte-level BPE, the 4-chars estimate) gets a scaled
estimate, and callers that must never go over count the candidate text for real.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from itertools import accumulate

from app.llm.tokens import TokenCounter

__all__ = ["TokenMeter"]

_WORD = re.compile(r"\S+")
_PROBE = "Naïve café, x=1.5e3; don't (see [1]) https://example.com/a?b=c\tTab\nre-use 東京 ÉTÉ."
_WORD_COUNTS: dict[str, dict[str, int]] = {}
_ADDITIVE: dict[str, bool] = {}
_CACHE_LIMIT = 500_000


class TokenMeter:
    """Token counts of word-aligned spans of one text.

    Attributes:
        starts: Start offset of each word.
        ends: End offset of each word.
        prefix: ``prefix[i]``: tokens of the first ``i`` words, counted word by word.
        exact: Whether the word-by-word sums are the tokenizer's own counts.
        scale: Whole-text count over the word-by-word sum (1.0 when exact).
    """

    def __init__(self, text: str, counter: TokenCounter) -> None:
        """Split ``text`` into words and count each distinct one with ``counter``."""
        key = f"{type(counter).__qualname__}:{counter.name}"
        if key not in _ADDITIVE:  # WordPiece passes; BPE and 4-chars-per-token do not
            parts = sum(counter.count(word) for word in _PROBE.split())
            _ADDITIVE[key] = counter.count(_PROBE) == parts
        cache = _WORD_COUNTS.setdefault(key, {})
        if len(cache) > _CACHE_LIMIT:  # replaced, not cleared: other threads may be reading
            cache = _WORD_COUNTS[key] = {}
        matches = list(_WORD.finditer(text))
        self.starts = [m.start() for m in matches]
        self.ends = [m.end() for m in matches]
        words = [m.group() for m in matches]
        for word in set(words).difference(cache):
            cache[word] = counter.count(word)
        self.prefix = list(accumulate(map(cache.__getitem__, words), initial=0))
        self.exact = _ADDITIVE[key]
        total = self.prefix[-1]
        self.scale = 1.0 if self.exact or not total else counter.count(text) / total

    def tokens(self, start: int, end: int) -> int:
        """Tokens of the words that start in ``[start, end)`` (scaled when not exact)."""
        raw = self.raw(bisect_left(self.starts, start), bisect_left(self.starts, end))
        return raw if self.exact else math.ceil(raw * self.scale)

    def raw(self, i: int, j: int) -> int:
        """Word-by-word tokens of words ``i`` to ``j - 1``."""
        return self.prefix[j] - self.prefix[i]
