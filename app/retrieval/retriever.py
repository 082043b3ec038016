"""Hybrid retrieval: dense and BM25 (in parallel on separate engines), fused, reranked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, TypeVar

from app.observability.metrics import record_error
from app.observability.tracing import engine_span
from app.retrieval.embedding.query_cache import QueryCache
from app.retrieval.fusion import Fusion, fuse
from app.retrieval.model_http import RemoteServiceError
from app.retrieval.protocols import Embedder, KeywordIndex, VectorIndex
from app.retrieval.remote.bulkhead import Bulkhead
from app.retrieval.rerank import Reranker
from app.retrieval.types import Hit, SearchFilter

__all__ = ["HybridRetriever", "Retrieved", "RetrievalUnavailable"]

logger = logging.getLogger(__name__)

_ROLES = ("vector", "keyword")
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Left:
    """Why an engine was left out of a turn (failed, or no answer in time)."""

    reason: str


_BACKGROUND: set[asyncio.Future[None]] = set()
"""Prefetches in flight: the event loop keeps only weak references to tasks."""


class RetrievalUnavailable(RuntimeError):
    """Every search engine failed or timed out: there is nothing to answer from."""


@dataclass(frozen=True)
class Retrieved:
    """The hits of a search, and the engines that could not take part in it."""

    hits: list[Hit]
    degraded: tuple[str, ...] = ()
    """``vector`` and/or ``keyword``: engines that failed or timed out, so the hits come
    from the other one alone. Empty when both answered."""


@dataclass(frozen=True, kw_only=True)
class HybridRetriever:
    """Retrieve from each engine, fuse, optionally rerank, keep ``top_n``.

    ``top_k`` candidates come from each engine unless a per-engine depth is set. With a
    reranker, the first ``rerank_depth`` fused hits (at least ``top_n``) are rescored; if
    it fails, the fused order is kept and the failure is logged.

    ``concurrent`` runs the two engines in parallel threads: right for remote engines,
    whose calls wait on the network. Engines that share one in-process lock (the embedded
    index) gain nothing from it, so with ``concurrent=False`` both searches run in a
    single worker thread, which saves a thread hop per query.

    With concurrent (remote) engines, one that fails or has not answered within
    ``engine_timeout_s`` is left out: the other engine's hits are used and the result is
    marked degraded (:class:`Retrieved`). When both fail, :class:`RetrievalUnavailable`
    is raised. Embedded engines fail together (one file), so their errors propagate.
    """

    embedder: Embedder
    vectors: VectorIndex
    keywords: KeywordIndex
    top_k: int = 20
    top_n: int = 5
    rrf_k: int = 60
    fusion: Fusion = "rrf"
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    dense_depth: int | None = None
    keyword_depth: int | None = None
    reranker: Reranker | None = None
    rerank_depth: int = 20
    concurrent: bool = True
    engine_timeout_s: float = 10.0
    engine_threads: int = 32
    """Remote engines: calls of one engine in flight at once, in threads of its own
    (:mod:`app.retrieval.remote.bulkhead`); past that, a call is left out at once."""
    _bulkheads: dict[str, Bulkhead] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def prefetch(self, query: str) -> None:
        """Start embedding ``query`` now, so that :meth:`search` finds it cached.

        Called as soon as a turn's standalone query is known: the embedding then overlaps
        the rest of routing and the step to the retrieve node, and :meth:`search` waits for
        it (the query cache never computes one query twice at once). A failure here is
        ignored; :meth:`search` embeds again and reports it.
        """
        if not query.strip():
            return
        start = getattr(self.embedder, "prefetch_query", None)
        if start is not None:  # the local embedder queues it without a thread to wait on it
            try:
                start(query)
            except Exception:  # noqa: BLE001 - search() embeds again and reports it
                logger.debug("query prefetch failed", exc_info=True)
            return
        cache = getattr(self.embedder, "cache", None)
        if isinstance(cache, QueryCache) and cache.knows(self.embedder.model_name, query):
            # Cached or in flight (the service prefetched it before the graph started):
            # a second worker thread would only sit blocked until the first one is done.
            return
        future = asyncio.ensure_future(asyncio.to_thread(self._embed_quietly, query))
        _BACKGROUND.add(future)
        future.add_done_callback(_BACKGROUND.discard)

    def _embed_quietly(self, query: str) -> None:
        try:
            self.embedder.embed_query(query)
        except Exception:  # noqa: BLE001, S110 - search() embeds again and reports it
            pass

    async def search(
        self,
        query: str,
        flt: SearchFilter,
        *,
        top_n: int | None = None,
        top_k: int | None = None,
        hybrid: bool = True,
    ) -> list[Hit]:
        """Search both engines and fuse; see :meth:`retrieve` (this drops the status).

        Args:
            query: The standalone question.
            flt: Tenant and ACL groups of the caller, applied inside each engine.
            top_n: Results kept after fusion; defaults to the configured value.
            top_k: Candidates wanted from each engine; see :meth:`retrieve`.
            hybrid: False searches the vector index alone.

        Returns:
            The fused (and reranked) hits, best first.
        """
        return (await self.retrieve(query, flt, top_n=top_n, top_k=top_k, hybrid=hybrid)).hits

    async def retrieve(
        self,
        query: str,
        flt: SearchFilter,
        *,
        top_n: int | None = None,
        top_k: int | None = None,
        hybrid: bool = True,
    ) -> Retrieved:
        """Search both engines (concurrently for remote ones), fuse, rerank.

        Args:
            query: The standalone question.
            flt: Tenant and ACL groups of the caller, applied inside each engine.
            top_n: Results kept after fusion; defaults to the configured value.
            top_k: Candidates wanted from each engine: the configured ``top_k`` grows to
                it (never shrinks); a per-engine depth, when configured, still wins.
            hybrid: False searches the vector index alone: BM25 gives no hits.

        Returns:
            The fused (and reranked) hits, best first, and the engines left out.

        Raises:
            RetrievalUnavailable: Both remote engines failed or timed out.
        """
        if not query.strip():
            return Retrieved([])

        depth = max(self.top_k, top_k or 0)
        dense_depth = self.dense_depth or depth
        keyword_depth = self.keyword_depth or depth

        def dense() -> list[Hit]:  # one thread hop for embedding and search
            with engine_span("embed"):
                vector = self.embedder.embed_query(query)
            with engine_span("vector", dense_depth) as span:
                hits = self.vectors.search(vector, flt, dense_depth)
                span.set(hits=len(hits))
            return hits

        def sparse() -> list[Hit]:
            with engine_span("keyword", keyword_depth) as span:
                hits = self.keywords.search(query, flt, keyword_depth) if hybrid else []
                span.set(hits=len(hits))
            return hits

        def both() -> tuple[list[Hit], list[Hit]]:
            # BM25 first: it needs no vector, so it runs while a prefetched query
            # embedding may still be computing.
            sparse_hits = sparse()
            return dense(), sparse_hits

        degraded: tuple[str, ...] = ()
        if self.concurrent:
            outcomes = await asyncio.gather(
                self._bounded("vector", dense), self._bounded("keyword", sparse)
            )
            failed = [
                (name, out.reason)
                for name, out in zip(_ROLES, outcomes, strict=True)
                if isinstance(out, _Left)
            ]
            if len(failed) == len(outcomes):
                raise RetrievalUnavailable(
                    "no search engine answered: " + "; ".join(f"{n} {e}" for n, e in failed)
                )
            degraded = tuple(name for name, _ in failed)
            dense_hits, sparse_hits = ([] if isinstance(o, _Left) else o for o in outcomes)
        else:
            dense_hits, sparse_hits = await asyncio.to_thread(both)
        fused = fuse(
            [dense_hits, sparse_hits],
            method=self.fusion,
            k=self.rrf_k,
            weights=(self.dense_weight, self.keyword_weight),
        )
        n = top_n or self.top_n
        if self.reranker is None or not fused:
            return Retrieved(fused[:n], degraded)
        return Retrieved(await self._rerank(self.reranker, query, fused, n), degraded)

    async def has_visible(self, flt: SearchFilter) -> bool:
        """Whether the caller can see any chunk (one visible chunk answers it).

        Remote engines are asked in turn, keyword first, each within ``engine_timeout_s``;
        when neither answers, True: the search that follows then reports the outage.
        """
        if not self.concurrent:
            return await asyncio.to_thread(self.keywords.count, flt, limit=1) > 0
        for role, count in (("keyword", self.keywords.count), ("vector", self.vectors.count)):
            found = await self._bounded(role, partial(count, flt, limit=1))
            if not isinstance(found, _Left):
                return found > 0
        return True

    async def ping(self, role: Literal["vector", "keyword"]) -> None:
        """Ask one engine for its size, as a readiness check, within ``engine_timeout_s``.

        Raises:
            ConnectionError: The engine failed or did not answer in time.
        """
        engine = self.vectors if role == "vector" else self.keywords
        if not self.concurrent:
            await asyncio.to_thread(engine.count, limit=1)
            return
        found = await self._bounded(role, partial(engine.count, limit=1))
        if isinstance(found, _Left):
            raise ConnectionError(found.reason)

    async def _bounded(self, role: str, call: Callable[[], _T]) -> _T | _Left:
        """Run one engine's call in a thread; its result, or why it was left out.

        A call past ``engine_timeout_s`` is abandoned, not cancelled: its thread ends
        when the client's own timeout fires, and its result is dropped.
        """
        bulkhead = self._bulkheads.get(role)
        if bulkhead is None:
            bulkhead = self._bulkheads.setdefault(role, Bulkhead(role, self.engine_threads))
        try:
            return await asyncio.wait_for(bulkhead.run(call), self.engine_timeout_s)
        except TimeoutError:
            kind, reason = "Timeout", f"no answer within {self.engine_timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - one engine down must not fail the turn
            # The type only: a client's message may quote the query.
            kind = reason = type(exc).__name__
        record_error(f"{role}_search", kind)
        logger.warning("%s engine left out of this turn: %s", role, reason)
        return _Left(reason)

    async def _rerank(self, reranker: Reranker, query: str, fused: list[Hit], n: int) -> list[Hit]:
        head = fused[: max(self.rerank_depth, n)]
        try:
            with engine_span("rerank", len(head)):
                return await asyncio.to_thread(reranker.rerank, query, head, n)
        except Exception as exc:  # a reranker outage must not fail the request
            record_error("rerank", type(exc).__name__)
            # Only our own messages are logged: they never contain query or document text.
            reason = str(exc) if isinstance(exc, RemoteServiceError) else type(exc).__name__
            logger.warning("rerank failed, keeping the fused order: %s", reason)
            return fused[:n]
