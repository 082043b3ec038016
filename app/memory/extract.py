"""Find durable facts in a turn with a generative model, as validated JSON.

The model is asked for lasting facts and preferences in the exchange. What the user
explicitly asks to keep ("remember that ...") is found without a model, by
:func:`app.text.facts.explicit_facts`.
"""

from __future__ import annotations

import logging
from typing import Final

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from app.llm.deadline import deadline_passed
from app.llm.structured import StructuredOutputError, ainvoke_structured
from app.llm.usage import model_role
from app.text.facts import MIN_WORDS

__all__ = ["EXTRACTION_PROMPT", "Facts", "model_facts"]

log = logging.getLogger(__name__)

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
        with model_role("memory"):
            result = await ainvoke_structured(model, [HumanMessage(prompt)], Facts)
    except StructuredOutputError:
        log.warning("memory extraction: the model's reply was invalid twice")
        return []
    except Exception as exc:  # noqa: BLE001 - any model failure only skips extraction
        log.warning("memory extraction failed: %s", type(exc).__name__)
        return []
    return [" ".join(f.split()) for f in result.facts if len(f.split()) >= MIN_WORDS]
