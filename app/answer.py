"""What one turn gives back: the answer, its streamed tokens, and a refused question.

Kept apart from :mod:`app.turns` so that the ``ragent`` command can name them without
importing LangGraph, which its cheap subcommands never need.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.state import Citation

__all__ = ["Answer", "QuestionError", "Token", "new_thread_id"]


class QuestionError(ValueError):
    """A question that cannot be asked (empty, too long)."""


@dataclass
class Answer:
    """The result of one turn: ``ragent ask --json`` prints exactly these keys."""

    answer: str
    citations: list[Citation] = field(default_factory=list)
    thread_id: str = ""
    refused: bool = False
    approvals: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls waiting for the user's decision (``id``, ``tool``, ``args``, ``risk``);
    the run is paused until :func:`resume`. Listed in ``as_dict`` only when there are some."""
    client_calls: list[dict[str, Any]] = field(default_factory=list)
    """Calls to the caller's own tools (``id``, ``name``, ``args``) waiting for their
    results; the run is paused until it is resumed with them. Listed in ``as_dict`` only
    when there are some."""
    degraded: list[str] = field(default_factory=list)
    """Search engines left out of this turn's retrieval (``vector``, ``keyword``) because
    they failed or timed out; listed in ``as_dict`` only when there are some."""
    cache: str = ""
    """``hit`` when the answer came from the answer cache, ``miss`` when the turn looked
    it up and missed, empty when it did not take part; listed in ``as_dict`` only when set."""
    usage: dict[str, int] = field(default_factory=dict)
    """Model tokens of the turn (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``), summed over every model call of the turn, as the models reported
    them; not in ``as_dict``."""
    model_calls: list[dict[str, Any]] = field(default_factory=list)
    """Each model call of the turn (``role``, ``model`` and its tokens, see
    :class:`app.llm.usage.ModelCall`), in the order they replied; not in ``as_dict``."""

    def as_dict(self) -> dict[str, Any]:
        """Return the answer as a JSON-ready dict."""
        out = asdict(self)
        del out["usage"]
        del out["model_calls"]
        if not self.approvals:
            del out["approvals"]
        if not self.client_calls:
            del out["client_calls"]
        if not self.degraded:
            del out["degraded"]
        if not self.cache:
            del out["cache"]
        return out


@dataclass(frozen=True)
class Token:
    """A piece of the model's reply, streamed before the turn ends.

    Pieces pass the output guard's checks as they stream (:mod:`app.safety.reply`):
    personal data and secrets arrive redacted, exactly as in the final answer, and a
    reply that starts repeating the system prompt stops with a ``refusal`` piece. The
    final :class:`Answer` is still authoritative: the output guard may drop citation
    labels that map to no source.
    """

    text: str
    message_id: str = ""
    """Changes when the model starts a new reply (after a tool call)."""
    restart: bool = False
    """The model's stream broke off and another model answers: drop what came before."""
    refusal: bool = False
    """The output checks stopped this reply: ``text`` is the refusal that replaces it."""


def new_thread_id() -> str:
    """Return a fresh thread id."""
    return uuid.uuid4().hex
