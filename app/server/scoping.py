"""Per-request views of the process's engines: a namespace, dense-only search, a tool subset.

A request's ``retrieval`` and ``tools`` options never change the shared engines: the
run gets a copy of :class:`~app.resources.Resources` whose retriever rewrites the
search filter to the namespace (or drops BM25), and whose registry holds only the
requested tools. Nodes and tools read it through ``aget_resources()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from app.resources import Resources
from app.retrieval.protocols import KeywordIndex, Vector, VectorIndex
from app.retrieval.types import Chunk, Hit, SearchFilter
from app.tools import ToolRegistry

__all__ = ["NAMESPACE_SEPARATOR", "namespace_tenant", "scoped"]

NAMESPACE_SEPARATOR = "#"
"""Namespace ``N`` of tenant ``T`` is stored as tenant ``T#N`` (tenant ids never hold #)."""


def namespace_tenant(tenant_id: str, namespace: str | None) -> str:
    """Return the tenant id under which a namespace's documents are indexed."""
    return f"{tenant_id}{NAMESPACE_SEPARATOR}{namespace}" if namespace else tenant_id


def _in(flt: SearchFilter, namespace: str) -> SearchFilter:
    return SearchFilter(namespace_tenant(flt.tenant_id, namespace), flt.groups)


@dataclass(frozen=True)
class _NamespacedVectors:
    inner: VectorIndex
    namespace: str

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        raise TypeError("a request's view of the index is read-only")

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        raise TypeError("a request's view of the index is read-only")

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        return self.inner.search(vector, _in(flt, self.namespace), k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        return self.inner.count(None if flt is None else _in(flt, self.namespace), limit=limit)


@dataclass(frozen=True)
class _ScopedKeywords:
    """BM25 in a namespace, or (``dense_only``) no BM25 hits while counts still work."""

    inner: KeywordIndex
    namespace: str | None
    dense_only: bool

    def _flt(self, flt: SearchFilter) -> SearchFilter:
        return _in(flt, self.namespace) if self.namespace else flt

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        raise TypeError("a request's view of the index is read-only")

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        raise TypeError("a request's view of the index is read-only")

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        return [] if self.dense_only else self.inner.search(query, self._flt(flt), k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        # The router counts keyword entries to know whether the caller has documents.
        return self.inner.count(None if flt is None else self._flt(flt), limit=limit)


@lru_cache(maxsize=64)
def _registry(registry: ToolRegistry, names: frozenset[str]) -> ToolRegistry:
    return ToolRegistry([t for t in registry.tools if t.name in names])


def scoped(
    resources: Resources,
    *,
    namespace: str | None = None,
    hybrid: bool = True,
    top_k: int | None = None,
    tools: Sequence[str] | None = None,
) -> Resources:
    """Return ``resources`` as one request sees them.

    Args:
        resources: The process's engines.
        namespace: Search only this namespace of the caller's tenant.
        hybrid: False searches the vector index alone.
        top_k: Sources the request wants; the candidate depth grows to match.
        tools: Names of the tools offered (None: all enabled ones).

    Raises:
        ValueError: A tool name that is not enabled on this server.
    """
    out = resources
    if namespace or not hybrid or (top_k and top_k > resources.retriever.top_k):
        retriever = resources.retriever
        vectors: VectorIndex = retriever.vectors
        if namespace:
            vectors = _NamespacedVectors(retriever.vectors, namespace)
        keywords: KeywordIndex = retriever.keywords
        if namespace or not hybrid:
            keywords = _ScopedKeywords(retriever.keywords, namespace, dense_only=not hybrid)
        depth = max(retriever.top_k, top_k or 0)
        out = replace(
            out, retriever=replace(retriever, vectors=vectors, keywords=keywords, top_k=depth)
        )
    if tools is not None:
        unknown = sorted(set(tools) - set(resources.tools.names))
        if unknown:
            offered = ", ".join(resources.tools.names) or "none"
            raise ValueError(f"unknown tool {unknown[0]!r}; this server offers: {offered}")
        out = replace(out, tools=_registry(resources.tools, frozenset(tools)))
    return out
