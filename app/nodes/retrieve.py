"""Hybrid retrieval for the current turn, filtered by tenant and ACL inside the engines."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from app.context import Context
from app.resources import aget_resources
from app.retrieval.types import SearchFilter
from app.state import AgentState, Source

__all__ = ["retrieve"]


async def retrieve(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Search the caller's documents for the standalone query and store the sources."""
    ctx = runtime.context
    flt = SearchFilter(ctx.tenant_id, frozenset(ctx.acl_groups))
    hits = await (await aget_resources()).retriever.search(state.query, flt, top_n=ctx.top_n)
    sources = [
        Source(
            label="",  # assigned by the reducer
            chunk_id=h.chunk.chunk_id,
            doc_id=h.chunk.doc_id,
            source=h.chunk.source,
            text=h.chunk.text,
            span=list(h.chunk.span),
            score=h.score,
        )
        for h in hits
    ]
    return {"sources": sources}
