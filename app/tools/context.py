"""The per-call context handed to tools as an injected argument the model never sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Final

from langchain_core.tools import InjectedToolArg
from langgraph.store.base import BaseStore

from app.retrieval.retriever import HybridRetriever
from app.settings import MemorySettings, ToolSettings

__all__ = ["CALLER", "Caller", "ToolContext"]

CALLER: Final = "caller"
"""Name of the injected argument that carries the :class:`ToolContext`."""


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """Who the call acts for, and the engines a tool may use on their behalf.

    Identity comes from the run's context (authentication), never from the model.
    """

    tenant_id: str
    user_id: str
    acl_groups: tuple[str, ...] = ()
    store: BaseStore | None = None
    """The long-term store (notes); None when the graph runs without one."""
    retriever: HybridRetriever | None = None
    namespace: str | None = None
    """The namespace of the tenant that document search reads (the run's context)."""
    hybrid: bool = True
    """Whether document search fuses BM25 with dense search (the run's context)."""
    top_k: int | None = None
    """Candidates document search wants from each engine (the run's context)."""
    settings: ToolSettings = field(default_factory=ToolSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)


Caller = Annotated[ToolContext, InjectedToolArg]
"""Annotation for a tool's ``caller`` argument."""
