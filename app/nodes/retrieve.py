"""Hybrid retrieval for the current turn, filtered by tenant and ACL inside the engines."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from app.context import Context
from app.resources import aget_resources
from app.retrieval.types import SearchFilter, namespace_tenant
from app.state import AgentState, Source

__all__ = ["retrieve"]


async def retrieve(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Search the caller's documents for the standalone query and store the sources.

    The context's ``namespace`` picks the tenant searched; its ``top_k``, ``top_n`` and
    ``hybrid`` set the depth, the sources kept and whether BM25 takes part.

    With remote engines, an engine that is down or slow is left out and named in
    ``degraded``; when both are, :class:`~app.retrieval.retriever.RetrievalUnavailable`
    ends the run (the API answers 503).
    """
    ctx = runtime.context
    flt = SearchFilter(namespace_tenant(ctx.tenant_id, ctx.namespace), frozenset(ctx.acl_groups))
    retriever = (await aget_resources()).retriever
    found = await retriever.retrieve(
        state.query, flt, top_n=ctx.top_n, top_k=ctx.top_k, hybrid=ctx.hybrid
    )
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
        for h in found.hits
    ]
    return {"sources": sources, "degraded": list(found.degraded)}
