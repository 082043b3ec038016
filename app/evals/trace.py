"""What one evaluated turn did: its answer, sources, tool calls and their outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from app.turns import Answer

__all__ = ["ItemRun", "SourceSeen", "ToolRun", "relative_source", "trace_turn"]


@dataclass(frozen=True)
class ToolRun:
    """A tool call the model made, and how it ended (``approval`` when it paused)."""

    name: str
    args: dict[str, Any]
    outcome: str
    risk: str


@dataclass(frozen=True)
class SourceSeen:
    """A retrieved chunk the model was given, by rank."""

    label: str
    source: str
    """Relative to the corpus folder when it lies inside it."""
    text: str


@dataclass
class ItemRun:
    """The record of one dataset item's run."""

    id: str
    answer: str = ""
    refused: bool = False
    cited: dict[str, str] = field(default_factory=dict)
    """``{label: source}`` of the answer's citations."""
    sources: list[SourceSeen] = field(default_factory=list)
    tools: list[ToolRun] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    """Calls that paused the run for approval (then denied by the evaluation)."""
    seconds: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    """Why the run failed; its scores are then 0."""

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (chunk texts left out)."""
        out = asdict(self)
        out["sources"] = [{"label": s.label, "source": s.source} for s in self.sources]
        return out


def relative_source(source: str, corpus: Path | None) -> str:
    """A source path relative to the corpus folder, or unchanged when outside it."""
    if corpus is None:
        return source
    try:
        return Path(source).resolve().relative_to(corpus.resolve()).as_posix()
    except ValueError:
        return source


def _turn(messages: Sequence[Any]) -> list[Any]:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return list(messages[i + 1 :])
    return list(messages)


def trace_turn(
    item_id: str,
    answer: Answer,
    values: Mapping[str, Any],
    *,
    corpus: Path | None,
    risks: Mapping[str, str],
    approvals: Sequence[dict[str, Any]] = (),
    seconds: float,
) -> ItemRun:
    """Build the record of a finished turn from its answer and the thread's state.

    Args:
        item_id: The dataset item.
        answer: What :func:`app.turns.ask` returned.
        values: The thread's state after the turn (``messages``, ``sources``).
        corpus: The ingested folder, to make sources relative.
        risks: Risk class of every known tool, by name.
        approvals: Calls the run paused on before it was resumed.
        seconds: Wall time of the turn.
    """
    turn = _turn(values.get("messages", []))
    outcomes = {
        m.tool_call_id: str(m.response_metadata.get("outcome", m.status))
        for m in turn
        if isinstance(m, ToolMessage)
    }
    # A call still waiting for approval has no tool message yet: it did not run.
    outcomes.update({a["id"]: "approval" for a in approvals if a["id"] not in outcomes})
    tools = [
        ToolRun(
            name=call["name"],
            args=dict(call["args"]),
            outcome=outcomes.get(call.get("id") or "", "none"),
            risk=risks.get(call["name"], "write"),
        )
        for message in turn
        if isinstance(message, AIMessage)
        for call in message.tool_calls
    ]
    sources = [
        SourceSeen(s["label"], relative_source(s["source"], corpus), s["text"])
        for s in values.get("sources", [])
    ]
    return ItemRun(
        id=item_id,
        answer=answer.answer,
        refused=answer.refused,
        cited={c["label"]: relative_source(c["source"], corpus) for c in answer.citations},
        sources=sources,
        tools=tools,
        approvals=list(approvals),
        seconds=seconds,
        usage=dict(answer.usage),
    )
