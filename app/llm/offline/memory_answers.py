"""Answers about the user from recalled long-term memories, for the offline answerer.

The respond node lists the memories recalled for a turn under :data:`MEMORIES_HEADER` in
the system message (:func:`render_memories`). When a question is about the user ("what
is my name?", "which database do I use?") and one of those memories shares its content
words, the offline answerer answers from the memory, in the second person and marked as
remembered. Memories never carry ``[S#]`` labels: they are not retrieved sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from app.text.facts import explicit_facts
from app.text.terms import content_terms

__all__ = [
    "FROM_MEMORY",
    "MEMORIES_HEADER",
    "answer_from_memories",
    "asks_about_user",
    "parse_memories",
    "render_memories",
    "second_person",
]

MEMORIES_HEADER: Final = "What you remember about the user:"
"""The line that opens the list of recalled memories in the system message."""

FROM_MEMORY: Final = "From memory:"
"""How an answer taken from memories starts."""

MAX_LISTED: Final = 3
"""Most memories quoted when the user asks what is remembered about them."""


def render_memories(memories: Sequence[str]) -> str:
    """Render memories as the block the respond node appends to the system message.

    Args:
        memories: Memory texts, most relevant first.

    Returns:
        ``MEMORIES_HEADER`` and one ``- <memory>`` line each; empty for no memories.
    """
    if not memories:
        return ""
    return "\n".join([MEMORIES_HEADER, *(f"- {' '.join(m.split())}" for m in memories)])


def parse_memories(text: str) -> list[str]:
    """Read back the memories that :func:`render_memories` wrote into a system message.

    Args:
        text: The system message text.

    Returns:
        The memory texts in order; empty when the message lists none.
    """
    _, found, rest = text.partition(MEMORIES_HEADER + "\n")
    if not found:
        return []
    memories: list[str] = []
    for line in rest.splitlines():
        if not line.startswith("- "):
            break
        memories.append(line[2:].strip())
    return [m for m in memories if m]


# "How do I ..." asks for instructions, not about the user, even with "my" in it.
_HOW_TO: Final = re.compile(
    r"^\s*(?:how|why)\s+(?:do|can|could|should|would|might|must|will)\s+i\b", re.IGNORECASE
)
_ABOUT_USER: Final = re.compile(
    r"\b(?:my|mine|myself)\b|\babout\s+me\b|\bwho\s+am\s+i\b"
    r"|\b(?:do|did|am|was|have|had|can|will|would)\s+i\b",
    re.IGNORECASE,
)


def asks_about_user(question: str) -> bool:
    """Tell whether a question asks about the user rather than the documents.

    Args:
        question: The user's question.

    Returns:
        True for e.g. "What is my name?", "Which database do I use?" or "What do you
        remember about me?"; False for "How do I sort a list?" and impersonal questions.
    """
    text = question.replace("\u2019", "'")
    return _ABOUT_USER.search(text) is not None and _HOW_TO.match(text) is None


# Words of the question that say "recall it", not what to recall.
_RECALL_WORDS: Final = frozenset(content_terms("remember remembered recall know knew said told"))
# Words that say little about which memory is meant on their own ("which editor do I
# use?" must not match "the user uses PostgreSQL").
_GENERIC: Final = frozenset(
    content_terms("use using like prefer want need work have call favourite favorite kind type")
)
_USER_TERMS: Final = frozenset(content_terms("user users"))


def _match(asked: set[str], memory: str) -> int:
    """How many of the question's terms a memory has; 0 when it has no specific one."""
    terms = set(content_terms(memory)) - _USER_TERMS
    shared = asked & terms
    specific = asked - _GENERIC
    if specific and not shared & specific:
        return 0
    return len(shared) if 2 * len(shared) >= len(asked) else 0


_VERB_AFTER: Final = re.compile(r"\bthe user (\w+)", re.IGNORECASE)
_IRREGULAR: Final = {"is": "are", "was": "were", "has": "have", "does": "do", "goes": "go"}
_KEEP_S: Final = ("ss", "us", "is")


def _agree(verb: str) -> str:
    """The second-person form of a third-person verb ("prefers" -> "prefer")."""
    low = verb.lower()
    if low in _IRREGULAR:
        return _IRREGULAR[low]
    if low.endswith("ies") and len(low) > 4:
        return verb[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes", "zes")):
        return verb[:-2]
    if low.endswith("s") and not low.endswith(_KEEP_S) and len(low) > 2:
        return verb[:-1]
    return verb


def second_person(memory: str) -> str:
    """Rewrite a third-person memory ("The user's name is Ada.") to address the user.

    Args:
        memory: A memory as stored, about "the user".

    Returns:
        The sentence about "you" ("your name is Ada."), starting in lower case.
    """
    text = re.sub(r"\bthe user's\b", "your", memory, flags=re.IGNORECASE)
    text = _VERB_AFTER.sub(lambda m: f"you {_agree(m.group(1))}", text)
    text = re.sub(r"\bthe user\b", "you", text, flags=re.IGNORECASE)
    return text[:1].lower() + text[1:]


def answer_from_memories(question: str, memories: Sequence[str]) -> str | None:
    """Answer a question about the user from the memories that answer it.

    Args:
        question: The user's question.
        memories: Recalled memories, most relevant first.

    Returns:
        ``"From memory: your name is Ada."``, or None when the question is not about
        the user, asks to remember something, or no memory answers it. A question with
        no content word beyond the asking ("What do you remember about me?") lists up
        to ``MAX_LISTED`` memories.
    """
    if not memories or not asks_about_user(question) or explicit_facts(question):
        return None  # "remember that my name is Bob" states a fact; it asks nothing
    asked = set(content_terms(question)) - _RECALL_WORDS
    if asked:
        scored = [(_match(asked, memory), -i, memory) for i, memory in enumerate(memories)]
        best = max(scored)
        chosen = [best[2]] if best[0] > 0 else []
    else:
        chosen = list(memories[:MAX_LISTED])
    if not chosen:
        return None
    sentences = [second_person(m).rstrip(". ") + "." for m in chosen]
    rest = [s[:1].upper() + s[1:] for s in sentences[1:]]
    return " ".join([FROM_MEMORY, sentences[0], *rest])
