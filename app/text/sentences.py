"""Sentences of a text, and the ones that best answer a question, for extractive answers.

Splitting into paragraphs, headings, list items and sentences, and ranking sentences by
the question's content terms (:mod:`app.text.terms`). Deterministic and pure.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from app.text.terms import content_terms

__all__ = [
    "Similarity",
    "is_heading",
    "rank_sentences",
    "split_sentences",
    "split_units",
]

# Words that end in "." without ending a sentence. Single letters (initials, "e" of "e.g")
# are handled separately.
_ABBREVIATIONS = frozenset(
    """
    e.g i.e cf vs etc al approx dr mr mrs ms prof sr jr st mt no nos fig figs eq eqs ref
    refs sec vol vols pp ch inc ltd co corp dept est min max avg resp viz ca jan feb mar apr
    jun jul aug sep sept oct nov dec
    """.split()
)
# "etc." very often does end a sentence; only keep it joined when lower case follows,
# which the splitter already does for every word.
_ABBREVIATIONS = _ABBREVIATIONS - {"etc"}

_TERMINATOR = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_STRUCTURAL_LINE = re.compile(r"^\s*(?:#{1,6}\s|[-*+\u2022]\s|\d{1,3}[.)]\s|>|\|)")
_LIST_MARKER = re.compile(r"^(?:[-*+\u2022]|\d{1,3}[.)]|>)\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_BLANK_LINE = re.compile(r"\n\s*\n")


def is_heading(unit: str) -> bool:
    """Tell whether a text unit is a Markdown ATX heading such as ``## WAL mode``.

    Args:
        unit: One unit returned by :func:`split_units`.

    Returns:
        True for heading lines.
    """
    return _HEADING.match(unit) is not None


def split_units(text: str) -> list[str]:
    """Split text into paragraphs, headings and list items.

    Blank lines always separate units. Inside a paragraph, a line that looks like a
    Markdown heading, list item, quote or table row starts a new unit, as does any line
    after a heading; other lines are treated as hard-wrapped continuation lines and joined
    with a single space. List and quote markers ("- ", "1. ", "> ") are removed; heading
    markers are kept so that :func:`is_heading` can recognise headings.

    Args:
        text: Free text, possibly Markdown.

    Returns:
        The non-empty units, in order, each stripped of surrounding whitespace.
    """
    units: list[str] = []
    for block in _BLANK_LINE.split(text):
        current: list[str] = []
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            starts_new = _STRUCTURAL_LINE.match(line) is not None
            if current and (starts_new or is_heading(current[0])):
                units.append(" ".join(current))
                current = []
            current.append(stripped if is_heading(stripped) else _LIST_MARKER.sub("", stripped))
        if current:
            units.append(" ".join(current))
    return units


def _ends_sentence(unit: str, start: int, match: re.Match[str]) -> bool:
    rest = unit[match.end() :].lstrip()
    if not rest or rest[0].islower():
        return False
    if match.group().rstrip("\"'\u201d\u2019)]") != ".":
        return True  # "!", "?", "..." followed by a capitalised word
    before = unit[start : match.start()]
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip("(\"'\u201c\u2018[").lower()
    if len(word) == 1 and word.isalpha():
        return False  # an initial, as in "J. Smith"
    if word in _ABBREVIATIONS:
        return False
    # A list marker such as "1." at the very start of the unit.
    return not (before.strip() == word and len(word) <= 3 and word.isdigit())


def split_sentences(text: str) -> list[str]:
    """Split text into sentences.

    Works on the units of :func:`split_units`, then splits each at ``.``, ``!`` or ``?``
    followed by whitespace and a capitalised word, except after abbreviations ("e.g.",
    "Dr.", "vs.") and initials. Decimals such as ``3.14`` are never split because no
    whitespace follows their point.

    Args:
        text: Free text, possibly Markdown.

    Returns:
        The sentences in order; their words are verbatim, with runs of whitespace
        inside a sentence collapsed to a single space.
    """
    sentences: list[str] = []
    for unit in split_units(text):
        unit = " ".join(unit.split())
        start = 0
        for match in _TERMINATOR.finditer(unit):
            if _ends_sentence(unit, start, match):
                sentences.append(unit[start : match.end()].strip())
                start = match.end()
        tail = unit[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


Similarity = Callable[[str, Sequence[str]], Sequence[float]]
"""Scores how close each sentence is in meaning to a question, from -1 to 1."""

_NEAR_DUPLICATE = 0.8  # Jaccard similarity of content terms from which a sentence repeats


def rank_sentences(
    question: str,
    sources: Sequence[tuple[str, str]],
    min_relevance: float = 0.3,
    max_sentences: int = 3,
    similarity: Similarity | None = None,
) -> list[tuple[str, str]]:
    """Pick the source sentences that best match a question.

    Every sentence is scored by the idf-weighted share of the question's content terms
    that it contains: ``sum(idf of question terms in the sentence) / sum(idf of all
    question terms)``, from 0 to 1, with idf smoothed over all sentences of all sources.
    Headings, sentences under three words and near-duplicates of a sentence already
    chosen are skipped. Ties keep source order.

    Args:
        question: The question.
        sources: ``(label, text)`` pairs.
        min_relevance: The lowest score a sentence may have to be chosen.
        max_sentences: The most sentences to choose.
        similarity: Optional semantic similarity of the question to each sentence
            (e.g. embedding cosine). Sentences still need ``min_relevance`` lexically,
            which keeps answers grounded; among those, the order uses the mean of the
            lexical score and the similarity, so a sentence that answers the question
            beats one that merely repeats its words.

    Returns:
        ``(label, sentence)`` pairs, best first; empty when nothing qualifies, when
        there are no sources or when the question has no content terms.
    """
    q_terms = sorted(set(content_terms(question)))  # sorted: float sums in a fixed order
    units = [
        (label, sentence, frozenset(content_terms(sentence)))
        for label, text in sources
        for sentence in split_sentences(text)
    ]
    if not q_terms or not units:
        return []
    df = Counter(term for _, _, terms in units for term in terms)
    idf = {t: math.log((len(units) + 1) / (df[t] + 1)) + 1.0 for t in q_terms}
    total = sum(idf[t] for t in q_terms)
    ranked: list[tuple[float, int, str, str, frozenset[str]]] = []
    for order, (label, sentence, terms) in enumerate(units):
        if is_heading(sentence) or len(sentence.split()) < 3:
            continue
        score = sum(idf[t] for t in q_terms if t in terms) / total
        if score >= min_relevance:
            ranked.append((-score, order, label, sentence, terms))
    if similarity is not None and ranked:
        sims = similarity(question, [r[3] for r in ranked])
        ranked = [
            (round((r[0] - max(0.0, float(sim))) / 2, 9), *r[1:])
            for r, sim in zip(ranked, sims, strict=True)
        ]
    chosen: list[tuple[str, str, frozenset[str]]] = []
    for _, _, label, sentence, terms in sorted(ranked):
        if len(chosen) >= max_sentences:
            break
        if not any(_similarity(terms, other) >= _NEAR_DUPLICATE for _, _, other in chosen):
            chosen.append((label, sentence, terms))
    return [(label, sentence) for label, sentence, _ in chosen]


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0
