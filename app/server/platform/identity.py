"""Who runs what: the caller's context (from its API key) and the assistants it may name.

The identity of a run (``tenant_id``, ``user_id``, ``acl_groups``) comes from the API key
and overwrites whatever a request's ``context`` or ``config`` says. The other knobs of
:class:`~app.context.Context` that a request may set are the ones ``/v1`` lets a client
set; the system prompt and the identity are not among them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.context import Context
from app.retrieval.types import NAMESPACE_PATTERN
from app.server.auth import Principal
from app.server.errors import ApiError

__all__ = [
    "ASSISTANTS",
    "IDENTITY_KEYS",
    "Assistant",
    "assistant_of",
    "run_context",
]

NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""The namespace of an assistant's id: ``uuid5(NAMESPACE_GRAPH, graph_id)``, as LangGraph's
server derives the id of each graph's default assistant."""

IDENTITY_KEYS = frozenset({"tenant_id", "user_id", "acl_groups"})
"""Context keys that come from the API key; a request's values for them are ignored."""


@dataclass(frozen=True)
class Assistant:
    """One graph of ``langgraph.json``, served as its default assistant."""

    graph_id: str
    description: str

    @property
    def assistant_id(self) -> str:
        """The assistant's id, as LangGraph's server derives it."""
        return str(uuid.uuid5(NAMESPACE_GRAPH, self.graph_id))

    def as_dict(self) -> dict[str, Any]:
        """The ``Assistant`` of the LangGraph API."""
        epoch = "1970-01-01T00:00:00+00:00"
        return {
            "assistant_id": self.assistant_id,
            "graph_id": self.graph_id,
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "name": self.graph_id,
            "description": self.description,
            "version": 1,
            "created_at": epoch,
            "updated_at": epoch,
        }


ASSISTANTS = (
    Assistant("agent", "Retrieval-augmented, tool-calling agent with citations."),
    Assistant("indexer", "Ingests documents into the search index (runs: POST /v1/ingest)."),
)


def assistant_of(assistant_id: str) -> Assistant:
    """Return the assistant named by its id or its graph id.

    Raises:
        ApiError: 404 when there is no such assistant.
    """
    for assistant in ASSISTANTS:
        if assistant_id in {assistant.graph_id, assistant.assistant_id}:
            return assistant
    raise ApiError(404, f"no assistant {assistant_id!r}", "not_found")


class _Knobs(BaseModel):
    """The per-run knobs a request may set, with the bounds ``/v1`` applies."""

    model_config = ConfigDict(extra="forbid")

    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    hybrid: bool = True
    top_k: int | None = Field(default=None, ge=1, le=20)
    tools: list[str] | None = Field(default=None, max_length=64)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stop: list[str] = Field(default_factory=list, max_length=4)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)


def run_context(principal: Principal, context: Any, config: Any = None) -> Context:
    """Return the context of a run: the caller's identity and the request's knobs.

    Args:
        principal: The caller.
        context: The request's ``context``: knobs, and identity keys that are ignored.
        config: The request's ``config``; knobs in its ``configurable`` apply too
            (``context`` wins), its other keys (LangGraph's own) are ignored.

    Raises:
        ApiError: 400 naming a knob that is unknown or out of range.
    """
    knobs: dict[str, Any] = {}
    configurable = config.get("configurable") if isinstance(config, dict) else None
    if isinstance(configurable, dict):
        knobs.update({k: v for k, v in configurable.items() if k in _Knobs.model_fields})
    if context is not None and not isinstance(context, dict):
        raise ApiError(400, "context: must be an object", "invalid_request", param="context")
    knobs.update({k: v for k, v in (context or {}).items() if k not in IDENTITY_KEYS})
    try:
        checked = _Knobs.model_validate(knobs)
        return Context(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            acl_groups=list(principal.groups),
            **checked.model_dump(),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"context.{where}: {first['msg']}"
        raise ApiError(400, message, "invalid_request", param="context") from None
    except ValueError as exc:
        raise ApiError(400, f"context: {exc}", "invalid_request", param="context") from None
