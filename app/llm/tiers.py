"""Model tiers (small, large, code) and the cheap rules that pick one for a question.

``route`` picks a tier from the question: code goes to ``code``; a question that needs
tools or is long goes to ``large``; the rest to ``small``. ``respond`` moves a ``small``
question to ``large`` when retrieval confidence is low, because the small model would
have to bridge what the sources do not say. Optionally a model classifies the question
instead of the rules (``llm.router: llm``), with a validated structured reply; any
failure there falls back to the rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from app.llm.structured import ainvoke_structured
from app.llm.tokens import TokenCounter
from app.llm.usage import model_role
from app.text.intents import asks_for_time, find_arithmetic
from app.text.terms import content_terms, term_set

__all__ = [
    "ModelSet",
    "Tier",
    "TierChoice",
    "TierModel",
    "TierRules",
    "classify_tier",
    "escalate",
    "has_code",
    "retrieval_confidence",
    "rule_tier",
]

Tier = Literal["small", "large", "code"]


@dataclass(frozen=True)
class TierModel:
    """A chat model (or fallback chain) with what its budget needs.

    Attributes:
        name: The model name, recorded with each answer.
        model: The chat model.
        counter: Its tokenizer.
        context_window: Tokens it reads, prompt and answer together.
    """

    name: str
    model: BaseChatModel
    counter: TokenCounter
    context_window: int


@dataclass(frozen=True)
class ModelSet:
    """The default model and the tiers configured on top of it."""

    default: TierModel
    tiers: Mapping[Tier, TierModel] = field(default_factory=dict)

    def pick(self, tier: Tier) -> TierModel:
        """Return the tier's model, or the default one when the tier is not configured."""
        return self.tiers.get(tier, self.default)

    async def aclose(self) -> None:
        """Close the connection pools of every remote model (each once)."""
        models = {id(t.model): t.model for t in (self.default, *self.tiers.values())}
        for model in models.values():
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()


@dataclass(frozen=True)
class TierRules:
    """Thresholds of the tier rules (``llm.small_max_words``, ``llm.min_confidence``)."""

    small_max_words: int = 40
    min_confidence: float = 0.5


_CODE = re.compile(
    r"```"
    r"|^(?: {4}|\t)\S"
    r"|Traceback \(most recent call last\)"
    r"|^\s*(?:def|class|import|from|function|const|let|var|public|private|#include|SELECT|INSERT"
    r"|UPDATE|CREATE)\b.*[:;{(=]"
    r"|\b\w+\([^()\s]*\)\s*[;{:]"
    r"|[{};]\s*$",
    re.MULTILINE,
)


def has_code(text: str) -> bool:
    """Tell whether a message contains source code, a stack trace or a code block."""
    return _CODE.search(text) is not None


def rule_tier(question: str, rules: TierRules) -> Tier:
    """Pick a tier by rules: code, tools needed, length.

    Args:
        question: The user's message.
        rules: The thresholds.

    Returns:
        ``code`` for code, ``large`` when a tool is needed or the question is longer than
        ``rules.small_max_words`` words, else ``small``.
    """
    if has_code(question):
        return "code"
    if find_arithmetic(question) or asks_for_time(question):
        return "large"
    return "large" if len(question.split()) > rules.small_max_words else "small"


def retrieval_confidence(query: str, texts: Sequence[str], top: int = 3) -> float:
    """Share of the query's content terms found in the best of the top sources.

    Args:
        query: The standalone retrieval query.
        texts: Source texts, best first.
        top: How many sources to look at.

    Returns:
        0 to 1; 0 when there are no sources, 1 when the query has no content terms.
    """
    terms = set(content_terms(query))
    if not terms:
        return 1.0
    return max((len(terms & term_set(t)) / len(terms) for t in texts[:top]), default=0.0)


def escalate(tier: Tier, confidence: float | None, rules: TierRules) -> Tier:
    """Move ``small`` to ``large`` when retrieval confidence is below the threshold."""
    if tier == "small" and confidence is not None and confidence < rules.min_confidence:
        return "large"
    return tier


class TierChoice(BaseModel):
    """A model's classification of a question."""

    tier: Tier = Field(description="small: simple lookup; large: reasoning or tools; code")
    reason: str = Field(default="", max_length=200)


_CLASSIFY = (
    "Classify the user's question for routing. Answer 'code' if it contains or asks for "
    "source code, 'large' if it needs multi-step reasoning, calculations or tools, and "
    "'small' for a simple factual lookup."
)


async def classify_tier(model: BaseChatModel, question: str) -> Tier:
    """Ask a model for the tier, as JSON validated against :class:`TierChoice`.

    Raises:
        StructuredOutputError: The reply is not valid, even after one repair.
    """
    with model_role("router"):
        choice = await ainvoke_structured(
            model, [HumanMessage(f"{_CLASSIFY}\n\nQuestion: {question}")], TierChoice
        )
    return choice.tier
