"""Hybrid retrieval: dense and BM25 in parallel, fused by reciprocal rank."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.retrieval.fusion import rrf
from app.retrieval.protocols import Embedder, KeywordIndex, VectorIndex
from app.retrieval.types import Hit, SearchFilter

__all__ = ["HybridRetriever"]


@dataclass(frozen=True, kw_only=True)
class HybridRetriever:
    """Retrieve ``top_k`` from each engine, fuse with RRF, keep ``top_n``."""

    embedder: Embedder
    vectors: VectorIndex
    keywords: KeywordIndex
    top_k: int = 20
    top_n: int = 5
    rrf_k: int = 60

    async def search(self, query: str, flt: SearchFilter, *, top_n: int | None = None) -> list[Hit]:
        """Search both engines concurrently and fuse.

        Args:
            query: The standalone question.
            flt: Tenant and ACL groups of the caller, applied inside each engine.
            top_n: Results kept after fusion; defaults to the configured value.

        Returns:
            The fused hits, best first.
        """
        if not query.strip():
            return []

        async def dense() -> list[Hit]:
            vector = await asyncio.to_thread(self.embedder.embed_query, query)
            return await asyncio.to_thread(self.vectors.search, vector, flt, self.top_k)

        sparse = asyncio.to_thread(self.keywords.search, query, flt, self.top_k)
        dense_hits, sparse_hits = await asyncio.gather(dense(), sparse)
        fused = rrf([dense_hits, sparse_hits], k=self.rrf_k)
        return fused[: top_n or self.top_n]
