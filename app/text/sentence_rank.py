"""The source sentences that best answer a question, for extractive answers.

A sentence is scored by the question's content terms it holds (:mod:`app.text.terms`),
by its closeness in meaning to the question (an optional embedding similarity), and by
whether it holds the kind of value the question asks for: a number for "how many" or
"what is the default", a year or date for "when", a name for "who". Deterministic and
pure, given a deterministic similarity.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from app.text.sentences import is_heading, split_sentences
from app.text.terms import content_terms

__all__ = ["SEMANTIC_ADMIT", "Similarity", "asked_value", "holds_value", "rank_sentences"]

Similarity = Callable[[str, Sequence[str]], Sequence[float]]
"""Scores how close each sentence is in meaning to a question, from -1 to 1."""

Value = Literal["number", "date", "name"]
"""A kind of value that a question asks for."""

SEMANTIC_ADMIT: Final = 0.4
"""Similarity from which a sentence that shares at least one content term with the
question qualifies although it shares less than ``min_relevance`` of them (MiniLM
cosine: sentences on another subject sit under 0.15, ones that answer in other words
above 0.4)."""

_VALUE_RANGE: Final = 0.5  # share of the best score from which a sentence with the value leads
_KEEP_RATIO: Final = 0.9  # a further sentence needs this share of the best one's score
_MAX_CANDIDATES: Final = 8  # sentences embedded per question (the best lexical ones)
# Words of a sentence that are embedded: a long sentence's main clause comes first, its mean
# vector drifts with every clause after it, and a batch costs its longest member's length.
_SIMILARITY_WORDS: Final = 32
_NEAR_DUPLICATE: Final = 0.8  # term overlap from which a sentence repeats a chosen one
_MAX_ITEMS: Final = 8  # list items quoted after a sentence that ends in ":"

_ASKS_NUMBER: Final = re.compile(
    r"\bhow\s+(?:many|much|large|big|long|often|old|far|high|low|fast|small)\b"
    r"|\b(?:default|maximum|minimum|max|min|limit|size|number\s+of|amount\s+of|count\s+of"
    r"|port|version|percentage|threshold)\b",
    re.IGNORECASE,
)
_ASKS_DATE: Final = re.compile(
    r"^\W*when\b|\b(?:what|which)\s+(?:year|date|month|day|decade|century)\b|\bsince\s+when\b",
    re.IGNORECASE,
)
_ASKS_NAME: Final = re.compile(r"^\W*(?:who|whom|whose)\b", re.IGNORECASE)
_NUMBER: Final = re.compile(
    r"\d|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty"
    r"|thirty|forty|fifty|hundred|thousand|million|billion|unlimited|none)\b",
    re.IGNORECASE,
)
_DATE: Final = re.compile(
    r"\b(?:1[5-9]\d\d|20\d\d)s?\b|\b(?:January|February|March|April|May|June|July|August"
    r"|September|October|November|December)\b"
)
# Two capitalised words in a row after the first word: "Michael Stonebraker", "Andrew Yu".
_NAME: Final = re.compile(r"\S\s+.*?\b[A-Z][a-z]+\s+[A-Z][a-z]+")
_CLAUSE_END: Final = re.compile(r"[.!?:;)\"'\u201d\u2019]$")


def asked_value(question: str) -> Value | None:
    """Tell which kind of value a question asks for, if any.

    Args:
        question: The question.

    Returns:
        ``"date"`` for "when ...", "what year ..."; ``"name"`` for "who ..."; ``"number"``
        for "how many/much/large/long/often ...", or a question about a default, limit,
        size or version; None otherwise.
    """
    if _ASKS_DATE.search(question):
        return "date"
    if _ASKS_NAME.search(question):
        return "name"
    if _ASKS_NUMBER.search(question):
        return "number"
    return None


def holds_value(sentence: str, kind: Value) -> bool:
    """Tell whether a sentence holds a value of the given kind (see :func:`asked_value`)."""
    pattern = {"number": _NUMBER, "date": _DATE, "name": _NAME}[kind]
    return pattern.search(sentence) is not None


def _is_title(sentence: str) -> bool:
    # HTML and PDF headings come without Markdown's "#": short, with no closing stop.
    return is_heading(sentence) or (
        len(sentence.split()) < 8 and _CLAUSE_END.search(sentence) is None
    )


_Unit = tuple[str, str, frozenset[str]]  # (label, sentence, content terms)


@dataclass(frozen=True)
class _Candidate:
    order: int
    label: str
    sentence: str
    terms: frozenset[str]
    lexical: float


def _units(sources: Sequence[tuple[str, str]]) -> list[_Unit]:
    return [
        (label, sentence, frozenset(content_terms(sentence)))
        for label, text in sources
        for sentence in split_sentences(text)
    ]


def _candidates(question: str, units: Sequence[_Unit]) -> list[_Candidate]:
    """Score every sentence lexically; keep those that share a term with the question."""
    q_terms = sorted(set(content_terms(question)))  # sorted: float sums in a fixed order
    if not q_terms or not units:
        return []
    df = Counter(term for _, _, terms in units for term in terms)
    idf = {t: math.log((len(units) + 1) / (df[t] + 1)) + 1.0 for t in q_terms}
    total = sum(idf.values())
    found = [
        _Candidate(order, label, sentence, terms, _share(idf, terms) / total)
        for order, (label, sentence, terms) in enumerate(units)
        if not _is_title(sentence) and len(sentence.split()) >= 3
    ]
    return [c for c in found if c.lexical > 0]


def _share(idf: dict[str, float], terms: frozenset[str]) -> float:
    return sum(weight for term, weight in idf.items() if term in terms)


def _with_list(cand: _Candidate, units: Sequence[_Unit]) -> str:
    """A sentence that ends in ":" with the items after it in its source, which say more.

    The items are the next sentence, and after it those that start with the same word
    ("To recover ...", "To update ..."), up to :data:`_MAX_ITEMS`.
    """
    if not cand.sentence.endswith(":"):
        return cand.sentence
    items: list[str] = []
    for label, sentence, _ in units[cand.order + 1 : cand.order + 1 + _MAX_ITEMS]:
        first = sentence.split(maxsplit=1)[0]
        if label != cand.label or (items and first != items[0].split(maxsplit=1)[0]):
            break
        items.append(sentence)
    return " ".join([cand.sentence, *items])


def _repeats(terms: frozenset[str], other: frozenset[str]) -> bool:
    # Overlap with the smaller set: a chunk that starts mid-sentence repeats the end of a
    # sentence of the chunk before it.
    smaller = min(len(terms), len(other))
    return smaller == 0 or len(terms & other) / smaller >= _NEAR_DUPLICATE


def rank_sentences(
    question: str,
    sources: Sequence[tuple[str, str]],
    min_relevance: float = 0.3,
    max_sentences: int = 3,
    similarity: Similarity | None = None,
) -> list[tuple[str, str]]:
    """Pick the source sentences that best answer a question.

    The lexical score of a sentence is the idf-weighted share of the question's content
    terms that it holds, from 0 to 1, with idf smoothed over all sentences of all sources.
    With ``similarity``, the score is the mean of the lexical score and the similarity of
    the sentence's first 32 words, for the 8 sentences with the best lexical scores.
    A sentence qualifies when its lexical score reaches ``min_relevance``, or, with
    ``similarity``, when it shares a content term with the question and its similarity
    reaches :data:`SEMANTIC_ADMIT`. Sentences that hold the kind of value the question
    asks for (:func:`asked_value`) and score at least half the best come first; after
    the first sentence, others are quoted only when they score nearly as well as the
    best, so an answer is not padded with weaker sentences.
    Headings and titles, sentences under three words and repeats of a chosen sentence
    are skipped. Ties keep source order. A chosen sentence that ends in ":" comes with the
    list items after it in its source.

    Args:
        question: The question.
        sources: ``(label, text)`` pairs.
        min_relevance: The lexical score from which a sentence qualifies.
        max_sentences: The most sentences to choose.
        similarity: Optional semantic similarity of the question to each sentence
            (e.g. embedding cosine).

    Returns:
        ``(label, sentence)`` pairs, best first; empty when nothing qualifies, when
        there are no sources or when the question has no content terms.
    """
    units = _units(sources)
    candidates = _candidates(question, units)
    if similarity is None:
        candidates = [c for c in candidates if c.lexical >= min_relevance]
        sims = [0.0] * len(candidates)
    else:
        candidates = sorted(candidates, key=lambda c: (-c.lexical, c.order))[:_MAX_CANDIDATES]
        heads = [" ".join(c.sentence.split()[:_SIMILARITY_WORDS]) for c in candidates]
        sims = [float(s) for s in similarity(question, heads)]
    scored: list[tuple[float, _Candidate]] = []
    for cand, sim in zip(candidates, sims, strict=True):
        if cand.lexical >= min_relevance or sim >= SEMANTIC_ADMIT:
            score = cand.lexical if similarity is None else (cand.lexical + max(0.0, sim)) / 2
            scored.append((round(score, 9), cand))
    if not scored:
        return []
    best = max(score for score, _ in scored)
    kind = asked_value(question)

    def preferred(score: float, cand: _Candidate) -> bool:
        return (
            kind is not None and score >= best * _VALUE_RANGE and holds_value(cand.sentence, kind)
        )

    scored.sort(key=lambda item: (not preferred(*item), -item[0], item[1].order))
    chosen: list[_Candidate] = []
    for score, cand in scored:
        if len(chosen) >= max_sentences or (chosen and score < best * _KEEP_RATIO):
            continue
        if not any(_repeats(cand.terms, other.terms) for other in chosen):
            chosen.append(cand)
    return [(c.label, _with_list(c, units)) for c in chosen]
