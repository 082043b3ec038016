"""Words of a text for lexical matching: tokens, light stems and content terms.

Deterministic and pure: the offline answerer, the tool router, the memory rules and the
answer evaluations compare texts through these same terms.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STOPWORDS", "content_terms", "stem", "term_set", "tokenize"]

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during
    each either else ever few for from further get gets got had has have having he her
    here hers herself him himself his how i if in into is it its itself just let me
    might more most must my myself no nor not now of off on once only or other our ours
    ourselves out over own please same shall she should so some such than that the their
    theirs them themselves then there these they this those through to too under until
    up upon us very was we were what whats when where whether which while who whom whose
    why will with within would yes yet you your yours yourself yourselves
    dont doesnt didnt isnt arent wasnt werent wont cant cannot im ive youre thats
    tell explain describe
    """.split()
)
"""Lower-case words that carry no content for lexical matching (includes question words)."""

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=65536)  # pure, and the same words recur in every source and question
def stem(word: str) -> str:
    """Strip common English suffixes so that inflected forms compare equal.

    A deliberately light stemmer: "indexes" -> "index", "running" -> "run",
    "caches"/"cache"/"caching" -> "cach", "quickly" -> "quick".

    Args:
        word: A lower-case token.

    Returns:
        The stem; words under three letters and non-alphabetic tokens come back
        unchanged.
    """
    if len(word) < 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith(("xes", "ches", "shes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ing") and len(word) > 4 and _has_vowel(word[:-3]):
        word = _undouble(word[:-3])
    elif word.endswith("ed") and not word.endswith("eed") and _has_vowel(word[:-2]):
        word = _undouble(word[:-2])
    elif word.endswith("ly") and len(word) - 2 >= 4:
        word = word[:-2]
    if len(word) > 2 and word.endswith("e"):
        word = word[:-1]
    return word


def _has_vowel(text: str) -> bool:
    return any(ch in "aeiouy" for ch in text)


def _undouble(word: str) -> str:
    if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    r"""Lower-case text and split it into word tokens.

    Args:
        text: Any text.

    Returns:
        The ``\w+`` runs of the lower-cased text, in order.
    """
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


def content_terms(text: str) -> list[str]:
    """Return the stemmed, non-stopword tokens of a text.

    Args:
        text: Any text.

    Returns:
        Stems of the tokens that are not stopwords, in order (duplicates kept).
    """
    return [stem(tok) for tok in tokenize(text) if tok not in STOPWORDS]


@lru_cache(maxsize=4096)  # the same sources come back turn after turn
def term_set(text: str) -> frozenset[str]:
    """Return the distinct content terms of a text (see :func:`content_terms`)."""
    return frozenset(content_terms(text))
