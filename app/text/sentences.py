"""Sentences of a text: paragraphs, headings, list items and sentences.

Ranking them against a question is :mod:`app.text.sentence_rank`. Deterministic and pure.
"""

from __future__ import annotations

import re

__all__ = ["is_heading", "split_sentences", "split_units"]

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
# A company's "Inc." or "Ltd." often closes a sentence: it does when a word that opens
# sentences, not a name, comes next ("... and ESL, Inc. The implementation began ...").
_CLOSING_ABBREVIATIONS = frozenset({"inc", "ltd", "co", "corp"})
_OPENERS = frozenset(
    """
    the this that these those it its in on at a an we they he she there as but however
    then since when while after before for from our their his her if
    """.split()
)

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
    if word in _CLOSING_ABBREVIATIONS:
        return rest.split(maxsplit=1)[0].lower() in _OPENERS
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
