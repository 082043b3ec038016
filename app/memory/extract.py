"""Find durable facts in a turn: explicit statements offline, a model's reading when set.

Offline, only what the user explicitly asks to keep counts: "remember that ...", "please
remember: ...", "keep in mind that ...", "don't forget that ...". First-person words are
rewritten to third person ("my" becomes "the user's"), so a memory reads the same in
any later prompt. With a generative model, it is also asked for lasting facts and
preferences in the exchange, as validated JSON.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from app.llm.deadline import deadline_passed
from app.llm.structured import StructuredOutputError, ainvoke_structured

__all__ = ["EXTRACTION_PROMPT", "Facts", "explicit_facts", "model_facts"]

log = logging.getLogger(__name__)

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

EXTRACTION_PROMPT: Final = """From this exchange, list facts about the user worth remembering
in later conversations: stable preferences, personal details they chose to share, standing
instructions. Leave out questions, small talk, and anything about the documents. Write
each fact as a short third-person sentence ("The user prefers metric units."). Return an
empty list when there is nothing lasting.

User: {question}
Assistant: {answer}"""


class Facts(BaseModel):
    """Lasting facts about the user found in one exchange."""

    facts: list[str] = Field(default_factory=list, max_length=5)


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


async def model_facts(model: BaseChatModel, question: str, answer: str) -> list[str]:
    """Ask a generative model for lasting facts in one exchange.

    A model that fails or answers invalid JSON twice yields no facts (logged, not raised):
    a missed memory must not fail the user's turn. Once the turn's model deadline has
    passed (:mod:`app.llm.deadline`), the model is not asked at all, so a hung model
    server does not hold the turn's reply.
    """
    if deadline_passed():
        log.warning("memory extraction skipped: the turn's model deadline has passed")
        return []
    prompt = EXTRACTION_PROMPT.format(question=question, answer=answer)
    try:
        result = await ainvoke_structured(model, [HumanMessage(prompt)], Facts)
    except StructuredOutputError:
        log.warning("memory extraction: the model's reply was invalid twice")
        return []
    except Exception as exc:  # noqa: BLE001 - any model failure only skips extraction
        log.warning("memory extraction failed: %s", type(exc).__name__)
        return []
    return [" ".join(f.split()) for f in result.facts if len(f.split()) >= MIN_WORDS]
