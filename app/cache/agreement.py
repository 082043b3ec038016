"""Whether two similar questions ask the same thing: the check that rejects near misses.

Embedding similarity alone rates "Are Python sorts stable?" and "Are Python sorts
unstable?" at 0.97, and a question about WAL mode close to the same one about rollback
mode. Two questions agree only when they name the same numbers, quoted strings,
identifiers and entities (capitalised words; an acronym such as "US" is one even where it
spells a stopword), both or neither are negated, and every content word one has and the
other lacks has a counterpart in the other that means nearly the same (by the embedder's
similarity of the two words) and is not its negation ("stable" / "unstable"). The words
they share, entities and the prepositions that give them their roles included, must come
in the same order, but for one phrase moved whole with its preposition ("In WAL mode,
..."): "Which team beat Brazil?" and "Which team did Brazil beat?" share every word and
ask opposite things.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from app.text.terms import STOPWORDS, stem, tokenize

__all__ = ["MAX_UNSHARED", "MAX_WORDS", "Agreement", "WordSimilarity", "agree", "key_terms"]

WordSimilarity = Callable[[str, str], float]
"""Cosine similarity of two single words (the embedder's)."""

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# Single quotes only around words, never an apostrophe ("What's", "Python's").
_QUOTED = re.compile(
    r"\"([^\"]+)\"|`([^`]+)`|\u201c([^\u201d]+)\u201d"
    r"|(?<!\w)'([^']+)'(?!\w)|(?<!\w)\u2018([^\u2019]+)\u2019(?!\w)"
)
_IDENTIFIER = re.compile(r"\b\w+(?:[_./:-]\w+)+\b|\b[a-z]+[A-Z]\w*\b")
_CAPITALISED = re.compile(r"\b[A-Z][\w-]*")
# Where a sentence starts, a capital says nothing: "How", "Is", "In WAL mode, ...".
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+)[\"'(\[\u201c\u2018]*$")
_NEGATIONS = frozenset(
    "not no never without none nothing nobody neither nor cannot cant dont doesnt didnt "
    "isnt arent wasnt werent wont shouldnt couldnt wouldnt hasnt havent hadnt".split()
)
_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "non", "dis", "de", "anti", "a")
# Prepositions mark a phrase's role: "elements of an array into rows" is not "rows into elements".
_ROLE_WORDS = frozenset(
    "about above after against as at before below between by during for from in into of off "
    "on onto over than through to toward towards under until upon with within without".split()
)
_ROLE_STEMS = frozenset(stem(word) for word in _ROLE_WORDS)
MAX_WORDS = 40
"""Content words a question may have to be compared at all: the checks stay cheap."""
MAX_UNSHARED = 6
"""Words one question may have that the other lacks: more, and they ask other things."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """The outcome of :func:`agree`: whether the questions agree, and why not."""

    ok: bool
    reason: str = ""


def key_terms(question: str) -> frozenset[str]:
    """Return the terms two questions must share exactly to ask the same thing.

    Numbers, quoted strings, identifiers (``max_connections``, ``list.sort``,
    ``camelCase``) and entities, lower-cased: capitalised words that are not stopwords
    (``SQLite``, ``POSTGRES``), and capitalised stopwords that are acronyms (``US``, ``IN``)
    or do not start a sentence (``The Who``); a capitalised "How" or "Is" at the start is
    no entity.
    """
    found: set[str] = {m.group(0).replace(",", "") for m in _NUMBER.finditer(question)}
    for match in _QUOTED.finditer(question):
        found.add("q:" + next(g for g in match.groups() if g).strip().lower())
    found |= {m.group(0).lower() for m in _IDENTIFIER.finditer(question)}
    for match in _CAPITALISED.finditer(question):
        token, word = match.group(0), match.group(0).lower()
        if len(word) < 2:
            continue  # "I", "A"
        if word not in STOPWORDS or token.isupper() or not _starts_sentence(question, match):
            found.add(word)
    return frozenset(found)


def _starts_sentence(question: str, match: re.Match[str]) -> bool:
    return _SENTENCE_START.search(question, 0, match.start()) is not None


def _negated(question: str) -> bool:
    words = tokenize(question)
    return any(w in _NEGATIONS for w in words) or "n't" in question.lower()


@lru_cache(maxsize=4096)
def _words(question: str) -> dict[str, str]:
    """Stem -> first surface form of the question's content words (no key terms)."""
    keys = {stem(key) for key in key_terms(question)}
    out: dict[str, str] = {}
    for token in tokenize(question):
        if token in STOPWORDS or stem(token) in keys or token.isdigit():
            continue  # "pythons" of "Python's" is the entity Python
        out.setdefault(stem(token), token)
    return out


def _negates(a: str, b: str) -> bool:
    """Whether two words are opposites by their form.

    One is the other with a negating prefix (stable / unstable), or they share an
    ending of four letters or more but start differently (ascending / descending,
    input / output, maximum / minimum): word embeddings rate such pairs alike.
    """
    for prefix in _NEGATING_PREFIXES:
        if (a == prefix + b or b == prefix + a) and min(len(a), len(b)) >= 3:
            return True
    shared = 0
    while shared < min(len(a), len(b)) and a[-1 - shared] == b[-1 - shared]:
        shared += 1
    return a != b and shared >= 3 and shared < min(len(a), len(b))


def _uncovered(
    own: dict[str, str], other: dict[str, str], similar: WordSimilarity, threshold: float
) -> str | None:
    """A word of ``own`` absent from ``other`` with no counterpart there, else None."""
    spare = [word for s, word in other.items() if s not in own]
    for s, word in own.items():
        if s in other:
            continue
        if not any(not _negates(word, u) and similar(word, u) >= threshold for u in spare):
            return word
    return None


def _counterparts(
    own: dict[str, str], other: dict[str, str], similar: WordSimilarity
) -> dict[str, str]:
    """Stem of each word of ``own`` that ``other`` lacks -> stem of its closest there."""
    spare = {s: word for s, word in other.items() if s not in own}
    out: dict[str, str] = {}
    for s, word in own.items():
        if s not in other and spare:
            out[s] = max(spare, key=lambda t: similar(word, spare[t]))
    return out


def _role_stems(question: str) -> list[str]:
    """The question's content words, entities and prepositions, stemmed, in order.

    Entities count as words, those that spell a stopword too ("US").
    """
    keys = key_terms(question)
    return [
        stem(t) for t in tokenize(question) if t in _ROLE_WORDS or t not in STOPWORDS or t in keys
    ]


def _ordered(stems: list[str], other: list[str]) -> list[str]:
    """``stems`` in order, as far as ``other`` has them.

    A word the other question has fewer times keeps only its first occurrences.
    """
    counts: dict[str, int] = {}
    for s in other:
        counts[s] = counts.get(s, 0) + 1
    out: list[str] = []
    for s in stems:
        if counts.get(s, 0) > 0:
            counts[s] -= 1
            out.append(s)
    return out


def _one_block_moved(a: list[str], b: list[str]) -> bool:
    """Whether ``b`` is ``a`` with at most one phrase moved elsewhere with its preposition.

    "In WAL mode, can a reader block a writer?" moves "in WAL mode" of "Can a reader block
    a writer in WAL mode?". Nothing else may change order: "Which team did Brazil beat?"
    moves one word of "Which team beat Brazil?" and swaps subject and object; "Can a
    writer block a reader ...?" swaps two words, and "rows of a query into elements of an
    array" two phrases of "elements of an array into rows of a query", its prepositions
    counted.
    """
    if a == b:
        return True
    n = len(a)
    for i in range(n):
        if a[i] not in _ROLE_STEMS:
            continue  # a moved phrase starts with the preposition that gives it its role
        for j in range(i + 2, n + 1):
            block, rest = a[i:j], a[:i] + a[j:]
            if all(word in _ROLE_STEMS for word in block):
                continue
            for k in range(len(rest) + 1):
                if rest[:k] + block + rest[k:] == b:
                    return True
    return False


def agree(a: str, b: str, similar: WordSimilarity, *, term_threshold: float) -> Agreement:
    """Decide whether question ``b`` asks what question ``a`` asks.

    Args:
        a: The stored question.
        b: The new question.
        similar: Cosine similarity of two words.
        term_threshold: Lowest similarity of a word to its counterpart.

    Returns:
        ``ok`` when they agree; otherwise ``reason`` names the kind of difference
        (never the words, which may be personal data). Questions of more than
        :data:`MAX_WORDS` content words never agree, nor do two that differ in more than
        :data:`MAX_UNSHARED` words: the word comparisons stay bounded.
    """
    wa, wb = _words(a), _words(b)
    if max(len(wa), len(wb)) > MAX_WORDS:
        return Agreement(False, "long")
    if len(wa.keys() - wb.keys()) > MAX_UNSHARED or len(wb.keys() - wa.keys()) > MAX_UNSHARED:
        return Agreement(False, "term")
    if key_terms(a) != key_terms(b):
        return Agreement(False, "entity")
    if _negated(a) != _negated(b):
        return Agreement(False, "negation")
    for own, other in ((wa, wb), (wb, wa)):
        for s, word in own.items():
            if s not in other and any(_negates(word, u) for u in other.values()):
                return Agreement(False, "negation")
        if _uncovered(own, other, similar, term_threshold) is not None:
            return Agreement(False, "term")
    # A word and its counterpart count as one word: "Who taught Aristotle?" and "Whom did
    # Aristotle teach?" swap "taught" / "teach" and "Aristotle".
    renamed = _counterparts(wb, wa, similar)
    stems_a, stems_b = _role_stems(a), [renamed.get(s, s) for s in _role_stems(b)]
    shared_a, shared_b = _ordered(stems_a, stems_b), _ordered(stems_b, stems_a)
    if max(len(shared_a), len(shared_b)) > MAX_WORDS:
        return Agreement(False, "long")
    if not _one_block_moved(shared_a, shared_b):
        return Agreement(False, "order")
    return Agreement(True)
