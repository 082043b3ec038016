"""Citations checked against the sources: each claim cites the source that supports it.

Small local models answer from the sources but seldom write ``[S#]`` labels, cite the
wrong source when they do, and add claims that no source makes. :func:`attribute` takes
the answer sentence by sentence: a sentence that makes a claim (three content terms or
more) keeps the labels of the sources that support it and gains the label of the source
that supports it best; a claim that no source supports is dropped. Support is lexical:
the share of the sentence's content terms (stemmed, stopwords out) found in the source,
which needs no model and no network, and matches how the offline answerer quotes.

When no claim is left, nothing is: the caller says it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from app.text.sentences import split_sentences, split_units
from app.text.terms import term_set

__all__ = ["Attributed", "attribute"]

_LABEL: Final = re.compile(r"\s*\[(S\d+)\]")
_MIN_CLAIM_TERMS: Final = 3


@dataclass(frozen=True)
class Attributed:
    """An answer with its citations checked.

    Attributes:
        text: The answer, each claim followed by the label of a source supporting it.
        added: Labels added to claims that had none, or replaced a wrong one.
        dropped: Claims dropped because no source supports them.
    """

    text: str
    added: int
    dropped: int


def _support(terms: frozenset[str], source: frozenset[str]) -> float:
    return len(terms & source) / len(terms) if terms else 0.0


def attribute(
    text: str, sources: Sequence[tuple[str, str]], *, min_support: float = 0.5
) -> Attributed:
    """Cite each claim of ``text`` by the source that supports it; drop unsupported claims.

    Args:
        text: The model's answer.
        sources: ``(label, text)`` of the retrieved chunks shown to the model.
        min_support: The least share of a claim's content terms a source must contain
            to support it.

    Returns:
        The answer with checked citations; its text is empty when no claim is supported.
    """
    terms = {label: term_set(body) for label, body in sources}
    units: list[str] = []
    added = dropped = claims = 0
    for unit in split_units(text):
        kept: list[str] = []
        for sentence in _sentences(unit):
            cited = _LABEL.findall(sentence)
            bare = _LABEL.sub("", sentence).strip()
            sentence_terms = term_set(bare)
            if len(sentence_terms) < _MIN_CLAIM_TERMS:
                kept.append(sentence)  # no claim to check ("Yes.", "In short:")
                continue
            scores = {label: _support(sentence_terms, t) for label, t in terms.items()}
            supported = [label for label in cited if scores.get(label, 0.0) >= min_support]
            best = max(scores, key=lambda label: scores[label], default=None)
            if best is None or scores[best] < min_support:
                dropped += 1
                continue
            claims += 1
            if best not in supported:
                supported.append(best)
                added += 1
            kept.append(_with_labels(bare, supported))
        if kept:
            units.append(" ".join(kept))
    if not claims:
        return Attributed("", added, dropped)
    return Attributed("\n\n".join(units), added, dropped)


def _sentences(unit: str) -> list[str]:
    """The unit's sentences, a run of bare labels joined to the sentence before it."""
    out: list[str] = []
    for sentence in split_sentences(unit):
        if out and not _LABEL.sub("", sentence).strip():
            out[-1] = f"{out[-1]} {sentence}"
        else:
            out.append(sentence)
    return out


def _with_labels(sentence: str, labels: Sequence[str]) -> str:
    """End the sentence with its labels, as the system prompt asks (``... pages. [S1]``)."""
    return f"{sentence} {''.join(f'[{label}]' for label in labels)}"
