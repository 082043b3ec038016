"""Assemble the context window by priority within a model's token limit.

Priority, highest first: the system prompt, the tool schemas, the running summary, the
recent turns (newest first), the sources by rank, and the long-term memories. Each
item goes in whole or not at all, so a source, a citation label or a tool call is never
cut. The current turn (the last user message and any tool calls since) always goes in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from app.llm.tokens import TokenCounter

__all__ = ["MESSAGE_OVERHEAD", "Window", "assemble", "message_tokens", "turn_groups"]

MESSAGE_OVERHEAD = 4
"""Tokens added per message for the chat template's role markers (a stated estimate)."""


@dataclass(frozen=True)
class Window:
    """What fits, and what was left out.

    Attributes:
        summary: The summary, or "" when it did not fit.
        turns: The messages of the kept turns, oldest first.
        sources: The kept sources (a prefix of the ranked list).
        memories: The kept memories, in their given order.
        tokens: Tokens used by everything kept, as counted.
        dropped: How many turns, sources and memories were left out.
    """

    summary: str
    turns: list[AnyMessage]
    sources: list[Any]
    memories: list[str]
    tokens: int
    dropped: dict[str, int] = field(default_factory=dict)


def message_tokens(message: AnyMessage, counter: TokenCounter) -> int:
    """Count a message's text, its tool calls' names and arguments, and the overhead."""
    tokens = counter.count(message.text) + MESSAGE_OVERHEAD
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            tokens += counter.count(call["name"] + json.dumps(call["args"]))
    return tokens


def turn_groups(messages: Sequence[AnyMessage]) -> list[list[AnyMessage]]:
    """Split a history into turns, each starting at a human message.

    A turn keeps an AI message's tool calls with their tool results. Tool results left
    at the start, whose call was folded away, are dropped.
    """
    groups: list[list[AnyMessage]] = []
    for message in messages:
        if isinstance(message, HumanMessage) or not groups:
            if isinstance(message, ToolMessage):
                continue
            groups.append([message])
        else:
            groups[-1].append(message)
    return groups


def assemble(
    *,
    limit: int,
    counter: TokenCounter,
    system: str,
    tools: Sequence[dict[str, Any]] = (),
    summary: str = "",
    turns: Sequence[AnyMessage] = (),
    sources: Sequence[Any] = (),
    render_source: Callable[[Any], str] = str,
    memories: Sequence[str] = (),
) -> Window:
    """Choose what goes into the prompt so that it fits in ``limit`` tokens.

    Args:
        limit: Tokens available for the prompt (the window minus the answer budget).
        counter: The model's token counter.
        system: The system prompt; always kept.
        tools: Tool schemas bound to the call; always kept, they are counted.
        summary: The running summary of older turns.
        turns: The live history, oldest first; the last turn is always kept.
        sources: Retrieved sources, best first; kept as a prefix, never cut.
        render_source: How one source is written in the prompt (what is counted).
        memories: Long-term memories, most relevant first.

    Returns:
        The kept parts; the caller renders them in its own order.
    """
    used = counter.count(system) + MESSAGE_OVERHEAD
    used += sum(counter.count(json.dumps(tool)) for tool in tools)
    dropped = {"summary": 0, "turns": 0, "sources": 0, "memories": 0}
    groups = turn_groups(turns)
    current = groups.pop() if groups else []
    used += sum(message_tokens(m, counter) for m in current)

    kept_summary = ""
    if summary:
        cost = counter.count(summary) + MESSAGE_OVERHEAD
        if used + cost <= limit:
            kept_summary, used = summary, used + cost
        else:
            dropped["summary"] = 1

    kept_groups: list[list[AnyMessage]] = []
    for group in reversed(groups):
        cost = sum(message_tokens(m, counter) for m in group)
        if used + cost > limit:
            dropped["turns"] = len(groups) - len(kept_groups)
            break  # an older turn never jumps a newer one that did not fit
        kept_groups.append(group)
        used += cost

    kept_sources: list[Any] = []
    for source in sources:
        cost = counter.count(render_source(source)) + 1
        if used + cost > limit:
            break  # lower-ranked sources never take the place of a better one
        kept_sources.append(source)
        used += cost
    dropped["sources"] = len(sources) - len(kept_sources)

    kept_memories: list[str] = []
    for memory in memories:
        cost = counter.count(memory) + 2
        if used + cost > limit:
            break
        kept_memories.append(memory)
        used += cost
    dropped["memories"] = len(memories) - len(kept_memories)

    kept_turns = [m for group in reversed(kept_groups) for m in group] + current
    return Window(
        summary=kept_summary,
        turns=kept_turns,
        sources=kept_sources,
        memories=kept_memories,
        tokens=used,
        dropped={k: v for k, v in dropped.items() if v},
    )
