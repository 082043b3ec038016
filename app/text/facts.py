"""What a user message explicitly asks to remember: "remember that ...", in third person.

Only explicit requests count: "remember that ...", "please remember: ...", "keep in mind
that ...", "don't forget that ...". First-person words are rewritten to third person
("my" becomes "the user's"), so a memory reads the same in any later prompt.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MIN_WORDS", "explicit_facts"]

_CUE: Final = re.compile(
    r"(?:^|(?<=[.!?;]\s))\s*(?:(?:also|and|so|but),?\s+)?(?:please\s+)?"
    r"(?:remember|keep\s+in\s+mind|don'?t\s+forget|do\s+not\s+forget)"
    r"(?:\s+that)?\s*[:,]?\s+(?P<fact>[^.!?;\n]+)",
    re.IGNORECASE,
)
_PERSON: Final = [
    (re.compile(r"\bI'm\b|\bI am\b", re.IGNORECASE), "the user is"),
    (re.compile(r"\bI've\b|\bI have\b", re.IGNORECASE), "the user has"),
    (re.compile(r"\bmy\b", re.IGNORECASE), "the user's"),
    (re.compile(r"\bmine\b", re.IGNORECASE), "the user's"),
    (re.compile(r"\bme\b", re.IGNORECASE), "the user"),
    (re.compile(r"\bmyself\b", re.IGNORECASE), "the user"),
    (re.compile(r"\bI\b"), "the user"),
]
MIN_WORDS: Final = 2
"""Fewest words a fact may have."""


def _third_person(text: str) -> str:
    for pattern, replacement in _PERSON:
        text = pattern.sub(replacement, text)
    return text


def explicit_facts(text: str) -> list[str]:
    """Return what a user message explicitly asks to remember, in third person.

    Args:
        text: The user's message.

    Returns:
        One sentence per request, e.g. ``"the user's locker code is 4512."``; empty when
        the message asks to remember nothing.
    """
    found: list[str] = []
    for match in _CUE.finditer(text):
        fact = " ".join(match.group("fact").split()).strip(" ,:")
        if len(fact.split()) < MIN_WORDS:
            continue
        sentence = _third_person(fact)
        found.append(sentence[:1].upper() + sentence[1:] + ".")
    return found
