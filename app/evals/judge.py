"""LLM judges, used when a generative model is configured: verdicts with a JSON schema.

The judge is the configured chat model, asked through :func:`ainvoke_structured`
(``response_format: json_schema``, one repair). A verdict that still does not validate
counts as a failed judgement (0) and is reported, never guessed.
"""

from __future__ import annotations

import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from app.evals.dataset import EvalItem
from app.evals.textmatch import cited_sentences, strip_labels
from app.evals.trace import ItemRun
from app.llm.structured import StructuredOutputError, ainvoke_structured

__all__ = ["CorrectnessVerdict", "SupportVerdict", "judge_item"]

log = logging.getLogger(__name__)

_CORRECTNESS = """You grade answers against a reference answer.
An answer is correct when it states the facts of the reference, in any wording, and
contradicts none of them. Extra true detail is allowed. Judge only what is written."""

_SUPPORT = """You check citations. A passage supports a sentence when everything the
sentence claims is stated in the passage. Judge only what is written."""


class CorrectnessVerdict(BaseModel):
    """The judge's verdict on an answer."""

    correct: bool = Field(description="The answer states the reference's facts.")
    reason: str = Field(default="", description="One short sentence.")


class SupportVerdict(BaseModel):
    """The judge's verdict on one citation."""

    supported: bool = Field(description="The passage states what the sentence claims.")
    reason: str = Field(default="", description="One short sentence.")


async def _correct(model: BaseChatModel, item: EvalItem, run: ItemRun) -> float:
    prompt = (
        f"Question: {item.question}\nReference answer: {item.reference}\n"
        f"Answer to grade: {strip_labels(run.answer)}"
    )
    verdict = await ainvoke_structured(
        model, [SystemMessage(_CORRECTNESS), HumanMessage(prompt)], CorrectnessVerdict
    )
    return float(verdict.correct)


async def _supported(model: BaseChatModel, sentence: str, passage: str) -> bool:
    prompt = f"Passage:\n{passage}\n\nSentence: {strip_labels(sentence)}"
    verdict = await ainvoke_structured(
        model, [SystemMessage(_SUPPORT), HumanMessage(prompt)], SupportVerdict
    )
    return verdict.supported


async def judge_item(model: BaseChatModel, item: EvalItem, run: ItemRun) -> dict[str, float]:
    """``judge_correctness`` (items with a reference) and ``judge_citation_precision``.

    Args:
        model: The judge.
        item: The dataset item.
        run: Its run.

    Returns:
        The judged metrics that apply; an invalid verdict scores 0.
    """
    scores: dict[str, float] = {}
    if item.reference is not None and not item.must_refuse and run.error is None:
        try:
            scores["judge_correctness"] = await _correct(model, item, run)
        except StructuredOutputError as exc:
            log.warning("judge: %s: %s", item.id, exc)
            scores["judge_correctness"] = 0.0
    chunks = {s.label: s.text for s in run.sources}
    verdicts: list[bool] = []
    for sentence in cited_sentences(run.answer):
        for label in sentence.labels:
            if label not in chunks:
                verdicts.append(False)
                continue
            try:
                verdicts.append(await _supported(model, sentence.text, chunks[label]))
            except StructuredOutputError as exc:
                log.warning("judge: %s [%s]: %s", item.id, label, exc)
                verdicts.append(False)
    if verdicts:
        scores["judge_citation_precision"] = sum(verdicts) / len(verdicts)
    return scores
