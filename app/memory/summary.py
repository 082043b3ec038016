"""Running-summary helpers for short-term memory compression."""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage

from app import prompts
from app.llm.deadline import deadline_passed
from app.llm.fallback.chain import OFFLINE
from app.llm.offline.answerer import ExtractiveAnswerer
from app.llm.tokens import TokenCounter
from app.llm.usage import model_role

__all__ = ["fit_tokens", "fold_point", "summarise", "window_tokens"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def window_tokens(messages: Sequence[AnyMessage], counter: TokenCounter) -> int:
    """Count the tokens of the messages' text."""
    return sum(counter.count(m.text) for m in messages)


def fold_point(messages: Sequence[AnyMessage], start: int, keep: int) -> int:
    """Return the index up to which messages are folded into the summary.

    At least ``keep`` recent messages stay; the window after the fold starts at a
    human message, so a tool result is never separated from its tool call.

    Args:
        messages: The whole thread.
        start: Messages before this index are already summarised.
        keep: How many recent messages must stay verbatim.

    Returns:
        An index in ``[start, len(messages)]``; equal to ``start`` when nothing can fold.
    """
    end = len(messages) - keep
    while end > start and not isinstance(messages[end], HumanMessage):
        end -= 1
    return max(end, start)


def _first_sentence(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    head = _SENTENCE_END.split(text, maxsplit=1)[0]
    return head if len(head) <= limit else head[:limit].rsplit(" ", 1)[0] + "…"


def _extractive(previous: str, turns: Sequence[AnyMessage], max_chars: int) -> str:
    lines = [line for line in previous.splitlines() if line]
    for message in turns:
        if isinstance(message, ToolMessage) or not message.text.strip():
            continue
        who = "User" if isinstance(message, HumanMessage) else "Assistant"
        lines.append(f"{who}: {_first_sentence(message.text)}")
    # Keep the newest lines that fit; the oldest detail is what goes first.
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > max_chars:
            break
        kept.append(line)
    return "\n".join(reversed(kept))


def fit_tokens(summary: str, counter: TokenCounter, limit: int) -> str:
    """Drop the summary's oldest lines (or cut its tail) until it has at most ``limit`` tokens."""
    lines = summary.splitlines()
    while len(lines) > 1 and counter.count("\n".join(lines)) > limit:
        lines.pop(0)
    text = "\n".join(lines)
    while text and counter.count(text) > limit:
        text = text[: int(len(text) * 0.9)].rstrip()
    return text


async def summarise(
    model: BaseChatModel,
    previous: str,
    turns: Sequence[AnyMessage],
    *,
    max_chars: int,
    extractive: bool = False,
) -> str:
    """Fold ``turns`` into the running summary.

    A generative model writes the summary; the offline answerer cannot, so the
    offline profile keeps the first sentence of each turn instead, and so does a turn
    whose model deadline has passed (:mod:`app.llm.deadline`) or whose summary the
    fallback chain could only get from the offline answerer.

    Args:
        model: The configured chat model.
        previous: The running summary so far.
        turns: The messages to fold in, oldest first.
        max_chars: Upper bound on the summary's length.
        extractive: Keep first sentences even when the model is generative.

    Returns:
        The new running summary.
    """
    if extractive or isinstance(model, ExtractiveAnswerer) or deadline_passed():
        return _extractive(previous, turns, max_chars)
    transcript = "\n".join(
        f"{'User' if isinstance(m, HumanMessage) else 'Assistant'}: {m.text}"
        for m in turns
        if not isinstance(m, ToolMessage) and m.text.strip()
    )
    prompt = prompts.SUMMARY_PROMPT.format(summary=previous or "(none)", turns=transcript)
    with model_role("summary"):
        reply = await model.ainvoke([HumanMessage(content=prompt)])
    if reply.response_metadata.get("served_by") == OFFLINE:
        return _extractive(previous, turns, max_chars)
    return reply.text.strip()[:max_chars]
