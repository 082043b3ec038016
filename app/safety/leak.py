"""Catch a reply that repeats the system prompt: the output side of prompt-leak defence.

The input guard refuses the requests for the prompt it recognises; a paraphrased request
can still get through, so the reply itself is checked before anyone sees it. A reply
leaks when it repeats the prompt word for word, either

- a run of :data:`RUN` consecutive prompt words of which at least :data:`CONTENT` are
  not common function words (so "if the sources do not contain the answer" alone does
  not count), or
- pieces that together cover :data:`COVERAGE` of the prompt's :data:`SHINGLE`-word
  shingles (a prompt recited with words changed or inserted every few words).

Words are compared case-folded and NFKC-normalised; punctuation, citation labels
(``[S1]``) and placeholders such as ``{now}`` are ignored. :class:`LeakWatch` applies
the same rules to a streamed reply, word by word, and holds back the words that are
repeating the prompt, so a stream stops before the run that trips the check goes out.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from string import Formatter

__all__ = ["CONTENT", "COVERAGE", "RUN", "SHINGLE", "LeakWatch", "PromptLeakCheck", "leak_check"]

RUN = 8
"""Consecutive prompt words that make a leak (with :data:`CONTENT` content words)."""
CONTENT = 4
"""Words of a :data:`RUN` that must not be function words."""
SHINGLE = 3
"""Shingle size of the coverage rule."""
COVERAGE = 0.25
"""Share of the prompt's shingles a reply may not repeat."""
MIN_SHINGLES = 8
"""Fewest shingles the coverage rule needs, so a short prompt is not tripped by a phrase."""

_WORD = re.compile(r"\[S\d+\]|[^\W_]+")
_PLACEHOLDER = re.compile(r"\{\w+\}")
_FUNCTION_WORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before "
    "being below between both but by can could did do does doing don down during each few for "
    "from further had has have having he her here hers him his how i if in into is it its "
    "itself just me more most my no nor not now of off on once only or other our ours out over "
    "own same she should so some such t than that the their theirs them then there these they "
    "this those through to too under until up very was we were what when where which while who "
    "whom why will with would you your yours".split()
)


def _words(text: str) -> list[tuple[int, str]]:
    return [(m.start(), _norm(m.group())) for m in _WORD.finditer(text) if m.group()[0] != "["]


def _literal_text(prompt: str) -> str:
    """The prompt as the model reads it, less its fields (``{now}``); ``{{`` reads ``{``."""
    try:
        return " ".join(literal for literal, *_ in Formatter().parse(prompt))
    except ValueError:  # not a format string after all
        return _PLACEHOLDER.sub(" ", prompt)


def _norm(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


@dataclass(frozen=True)
class PromptLeakCheck:
    """The parts of one system prompt that a reply must not repeat."""

    runs: frozenset[tuple[str, ...]]
    """Every :data:`RUN`-word run of the prompt with :data:`CONTENT` content words."""
    parts: frozenset[tuple[str, ...]]
    """Every run of 1 to ``RUN - 1`` prompt words: what a stream holds back."""
    shingles: frozenset[tuple[str, ...]]
    """Every :data:`SHINGLE`-word run of the prompt."""
    need: int
    """Shingles a reply must repeat to leak by coverage."""

    @classmethod
    def of(cls, prompt: str) -> PromptLeakCheck:
        """Build the check for ``prompt`` (placeholders such as ``{now}`` left out)."""
        words = [w for _, w in _words(_literal_text(prompt))]

        def runs_of(size: int) -> set[tuple[str, ...]]:
            return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}

        runs = {r for r in runs_of(RUN) if sum(w not in _FUNCTION_WORDS for w in r) >= CONTENT}
        parts: set[tuple[str, ...]] = set()
        for size in range(1, RUN):
            parts |= runs_of(size)
        shingles = runs_of(SHINGLE)
        need = max(MIN_SHINGLES, math.ceil(COVERAGE * len(shingles)))
        return cls(frozenset(runs), frozenset(parts), frozenset(shingles), need)

    def leaks(self, text: str) -> bool:
        """Whether ``text`` repeats the prompt (the rules in this module's docstring)."""
        watch = LeakWatch(self)
        watch.feed(text, last=True)
        return watch.tripped


# About 1.6 MB and 40 ms for the longest prompt an API request may carry (8,000 characters
# of system messages): few are kept, and a rebuild costs less than the model call.
@lru_cache(maxsize=16)
def leak_check(prompt: str) -> PromptLeakCheck:
    """The check for ``prompt``, built once per distinct prompt (the last 16 are kept)."""
    return PromptLeakCheck.of(prompt)


class LeakWatch:
    """Follows one reply as it streams and trips when it repeats the prompt.

    :meth:`feed` returns the text that may go out: everything but the trailing words
    that repeat part of the prompt (at most ``RUN - 1``) and a word that may continue.
    Once tripped, it returns nothing more.
    """

    def __init__(self, check: PromptLeakCheck) -> None:
        """Watch a new reply against ``check``."""
        self._check = check
        self._text = ""
        self._sent = 0
        self._scanned = 0  # words that end before this are counted
        self._recent: list[tuple[int, str]] = []  # the last RUN words, with their offsets
        self._run = 0  # how many of the recent words repeat a part of the prompt
        self._covered: set[tuple[str, ...]] = set()
        self.tripped = False
        """The reply repeated the prompt; nothing more of it goes out."""

    def feed(self, piece: str, *, last: bool = False) -> str:
        """Add text (``last`` when the reply ends with it); return what may go out."""
        if self.tripped:
            return ""
        self._text += piece
        hold = len(self._text)
        for match in _WORD.finditer(self._text, self._scanned):
            if match.end() == len(self._text) and not last:
                hold = match.start()  # the word may go on in the next piece
                break
            self._scanned = match.end()
            if match.group()[0] != "[":
                self._add(match.start(), _norm(match.group()))
                if self.tripped:
                    return ""
        if self._run and not last:
            hold = min(hold, self._recent[-self._run][0])
        out, self._sent = self._text[self._sent : hold], max(self._sent, hold)
        return out

    def _add(self, start: int, word: str) -> None:
        check = self._check
        self._recent.append((start, word))
        del self._recent[:-RUN]
        words = tuple(w for _, w in self._recent)
        if words in check.runs:
            self.tripped = True
            return
        shingle = words[-SHINGLE:]
        if shingle in check.shingles:
            self._covered.add(shingle)
            if len(self._covered) >= check.need:
                self.tripped = True
                return
        run = min(self._run + 1, RUN - 1, len(words))
        while run and words[-run:] not in check.parts:
            run -= 1
        self._run = run
