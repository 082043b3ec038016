"""Graph state: the narrow input schema and the full agent state, with pure reducers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph import add_messages
from langgraph.managed import RemainingSteps

from app.config.tools import LimitSettings

__all__ = [
    "AgentState",
    "Citation",
    "InputState",
    "Source",
    "reduce_sources",
]


class Source(TypedDict):
    """A retrieved chunk shown to the model under its label."""

    label: str
    """The citation label the model sees, e.g. ``S1``."""
    chunk_id: str
    doc_id: str
    source: str
    """The path or URL as ingested."""
    text: str
    span: list[int]
    """Character offsets ``[start, end)`` of the chunk in its document."""
    score: float


class Citation(TypedDict):
    """A citation the final answer actually uses; every one maps to a retrieved chunk."""

    label: str
    source: str
    doc_id: str
    chunk_id: str
    span: list[int]


_MAX_TOOL_STEPS: int = LimitSettings.model_fields["max_tool_steps"].default


def reduce_sources(
    existing: Sequence[Source], new: Sequence[Source] | Literal["delete"]
) -> list[Source]:
    """Append sources, relabelling new ones so labels stay unique; ``"delete"`` resets.

    Args:
        existing: Sources already in the state for this turn.
        new: Sources to add, or ``"delete"`` to clear them at the start of a turn.

    Returns:
        The combined list. A chunk already present is not added twice.
    """
    if new == "delete":
        return []
    merged = list(existing)
    seen = {s["chunk_id"] for s in merged}
    for source in new:
        if source["chunk_id"] in seen:
            continue
        seen.add(source["chunk_id"])
        merged.append({**source, "label": f"S{len(merged) + 1}"})
    return merged


@dataclass(kw_only=True)
class InputState:
    """What a caller sends: the conversation so far (usually one new human message)."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The full message history of the thread; new messages are appended."""


@dataclass(kw_only=True)
class AgentState(InputState):
    """Everything the graph tracks for a thread."""

    route: Literal["rag", "direct"] = "direct"
    """The path chosen for the current turn."""
    tier: Literal["small", "large", "code"] = "large"
    """The model tier chosen for the current turn."""
    query: str = ""
    """The standalone retrieval query for the current turn."""
    sources: Annotated[list[Source], reduce_sources] = field(default_factory=list)
    """Chunks retrieved for the current turn, labelled S1..Sn."""
    citations: list[Citation] = field(default_factory=list)
    """Citations used by the final answer of the current turn."""
    memories: list[str] = field(default_factory=list)
    """Long-term memories recalled for this user and turn."""
    summary: str = ""
    """Running summary of the turns folded out of the context window."""
    summarized_count: int = 0
    """How many leading messages the summary covers (they stay in the checkpoint)."""
    tool_steps: int = 0
    """Tool-execution rounds used in the current turn."""
    max_tool_steps: int = _MAX_TOOL_STEPS
    """Tool rounds a turn may use (``limits.max_tool_steps``), set by ``respond`` for the
    branch after it."""
    turn_started_at: float = 0.0
    """When the current turn started (Unix time), for its wall-time budget."""
    remaining_steps: RemainingSteps = 25
    """Graph steps left before the recursion limit (managed by LangGraph)."""
    refused: bool = False
    """Whether the current turn ended in a refusal or an "I don't know"."""
    blocked: str = ""
    """Why the input guard blocked the current turn; empty when it did not."""
    cache: Literal["", "pending", "hit", "miss"] = ""
    """Whether the current turn was served from the answer cache (``hit``), looked it up
    and missed (``miss``), is about to look it up (``pending``), or does not take part
    (empty; see :mod:`app.nodes.cache`)."""
    degraded: list[str] = field(default_factory=list)
    """Search engines left out of the current turn's retrieval (``vector``, ``keyword``):
    they failed or timed out, and the sources come from the other engine alone."""
