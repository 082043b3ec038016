"""Offline text comparisons: answer F1 and exact match, citation support, prompt leaks."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.text.sentences import split_sentences
from app.text.terms import content_terms, tokenize

__all__ = [
    "LEXICAL_SUPPORT",
    "SEMANTIC_SUPPORT",
    "CitedSentence",
    "Similarity",
    "Support",
    "cited_sentences",
    "exact_match",
    "leaks",
    "lexical_support",
    "normalize_answer",
    "strip_labels",
    "support",
    "token_f1",
]

LEXICAL_SUPPORT = 0.6
"""A citation supports its sentence when at least this share of the sentence's content
terms (stemmed, stopwords removed) occur in the cited chunk..."""
SEMANTIC_SUPPORT = 0.75
"""...or when the sentence's embedding is at least this close (cosine) to one of the
chunk's sentences. An extractive quote scores 1 on both; a paraphrase passes on meaning."""

_LABELS = re.compile(r"\s*(?:\[S\d+\])+")
_LABEL = re.compile(r"\[(S\d+)\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def strip_labels(text: str) -> str:
    """Remove ``[S#]`` citation labels from an answer."""
    return _LABELS.sub("", text).strip()


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, articles or extra spaces."""
    text = strip_labels(text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(answer: str, reference: str) -> float:
    """1.0 when the normalised answer equals the normalised reference, else 0.0."""
    return float(normalize_answer(answer) == normalize_answer(reference))


def token_f1(answer: str, reference: str) -> float:
    """SQuAD token F1 between the normalised answer and reference (0 to 1)."""
    got = normalize_answer(answer).split()
    want = normalize_answer(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class CitedSentence:
    """A sentence of an answer and the labels that end it."""

    text: str
    labels: tuple[str, ...]


def cited_sentences(answer: str) -> list[CitedSentence]:
    """Split an answer after each run of citation labels.

    Every run of ``[S#]`` labels closes the sentence before it: ``"A. [S1] B [S2][S3]"``
    gives ``A.`` cited by S1 and ``B`` cited by S2 and S3. Text after the last label
    carries no citation and is not returned.
    """
    out: list[CitedSentence] = []
    start = 0
    for run in re.finditer(r"(?:\[S\d+\]\s*)+", answer):
        sentence = answer[start : run.start()].strip()
        start = run.end()
        labels = tuple(dict.fromkeys(_LABEL.findall(run.group())))
        if sentence:
            out.append(CitedSentence(sentence, labels))
    return out


def lexical_support(sentence: str, chunk: str) -> float:
    """The share of the sentence's content terms that occur in the chunk (0 to 1)."""
    terms = content_terms(sentence)
    if not terms:
        return 0.0
    present = set(content_terms(chunk))
    return sum(term in present for term in terms) / len(terms)


Similarity = Callable[[str, Sequence[str]], Sequence[float]]
"""Cosine similarity of a text to each of several texts (the local embedder)."""


@dataclass(frozen=True)
class Support:
    """Whether a citation supports its sentence, and the scores behind the verdict."""

    supported: bool
    lexical: float
    semantic: float | None


def support(sentence: str, chunk: str, similarity: Similarity | None) -> Support:
    """Judge offline whether ``chunk`` supports ``sentence`` (see the two thresholds)."""
    lexical = lexical_support(sentence, chunk)
    if lexical >= LEXICAL_SUPPORT or similarity is None:
        return Support(lexical >= LEXICAL_SUPPORT, lexical, None)
    parts = split_sentences(chunk) or [chunk]
    semantic = max(similarity(strip_labels(sentence), parts), default=0.0)
    return Support(semantic >= SEMANTIC_SUPPORT, lexical, float(semantic))


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = tokenize(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def leaks(answer: str, secret: str, n: int = 6) -> bool:
    """Whether the answer repeats any ``n`` consecutive words of ``secret`` (the prompt).

    Placeholders such as ``{now}`` are left out of the secret first.
    """
    secret = re.sub(r"\{\w+\}", " ", secret)
    return bool(_shingles(answer, n) & _shingles(secret, n))
