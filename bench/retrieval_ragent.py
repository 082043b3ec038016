"""ragent's side of bench/retrieval.py: the embedded engine, driven through app.retrieval.

Every chunk belongs to one tenant. One chunk in ten is public (no ACL); the others carry
the ACL group ``staff``. A caller in ``staff`` sees every chunk (quality and the main
latency figures); a caller with no group sees only the public tenth (the filtered latency).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from retrieval_data import latency_summary, timed_rounds

from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.retriever import HybridRetriever
from app.retrieval.types import Chunk, DocumentRecord, SearchFilter
from app.settings import RetrievalSettings

__all__ = ["EVERYONE", "PUBLIC_ONLY", "Engine", "QueryVectors", "make_chunk"]

TENANT = "bench"
STAFF = "staff"
EVERYONE = SearchFilter(TENANT, frozenset({STAFF}))
PUBLIC_ONLY = SearchFilter(TENANT)
BULK_BATCH = 5_000
CHUNKS_PER_DOC = 10
MODEL = "all-MiniLM-L6-v2"


def make_chunk(position: int, chunk_id: str, doc_id: str, text: str, heading: str = "") -> Chunk:
    """A chunk of the benchmark tenant; ``position`` decides whether it is public."""
    return Chunk(
        chunk_id=chunk_id,
        doc_id=doc_id,
        tenant_id=TENANT,
        source=f"bench/{doc_id}",
        text=text,
        span=(0, len(text)),
        content_hash=hashlib.sha1(text.encode()).hexdigest(),
        acl=() if position % 10 == 0 else (STAFF,),
        heading=heading,
    )


class QueryVectors:
    """An embedder that returns precomputed query vectors: query embedding costs nothing."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._lookup = {t: np.asarray(v, np.float32) for t, v in zip(texts, vectors, strict=True)}
        self._dim = int(vectors.shape[1])

    @property
    def model_name(self) -> str:
        return MODEL

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return 256

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("passages are embedded once, before the benchmark")

    def embed_query(self, text: str) -> np.ndarray:
        return self._lookup[text]


class Engine:
    """A fresh embedded index in ``folder`` with a HybridRetriever configured by ``settings``."""

    def __init__(self, folder: Path, dim: int, settings: RetrievalSettings, queries: QueryVectors):
        self.index = EmbeddedIndex(folder / "index.sqlite", dim=dim)
        self.vectors = EmbeddedVectorIndex(self.index)
        self.keywords = EmbeddedKeywordIndex(self.index)
        self.settings = settings
        self.queries = queries
        self.retriever = HybridRetriever(
            embedder=queries,
            vectors=self.vectors,
            keywords=self.keywords,
            top_k=settings.top_k,
            top_n=settings.top_n,
            rrf_k=settings.rrf_k,
            fusion=settings.fusion,
            dense_weight=settings.dense_weight,
            keyword_weight=settings.keyword_weight,
            dense_depth=settings.dense_depth,
            keyword_depth=settings.keyword_depth,
            concurrent=False,  # as app/resources.py builds it for the embedded engines
        )
        self._runner = asyncio.Runner()

    def close(self) -> None:
        self._runner.close()
        self.index.close()

    def hybrid(self, query: str, flt: SearchFilter, top: int) -> list[str]:
        hits = self._runner.run(self.retriever.search(query, flt, top_n=top))
        return [h.chunk.chunk_id for h in hits]

    def load(self, batches: Iterable[tuple[list[Chunk], np.ndarray]]) -> dict[str, Any]:
        """Upsert every batch into the (empty) index; time the upserts only."""
        seconds, count = 0.0, 0
        for chunks, vectors in batches:
            started = time.perf_counter()
            self.index.upsert(chunks, vectors)
            seconds += time.perf_counter() - started
            count += len(chunks)
        started = time.perf_counter()
        self.index.flush()  # keyword index catch-up, counted as part of the load
        seconds += time.perf_counter() - started
        # The HNSW graph is built off the write path (a background thread in serving);
        # finish it here so searches are timed in the steady state, and report its cost.
        started = time.perf_counter()
        graph = self.index.build_graph()
        return _rate(
            count,
            seconds,
            batch=BULK_BATCH,
            graph_positions=graph,
            graph_seconds=round(time.perf_counter() - started, 1),
        )

    def rankings(
        self, ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray, top: int
    ) -> dict[str, dict[str, list[str]]]:
        """Chunk ids ranked by BM25 alone, dense alone and hybrid, per query id."""
        runs: dict[str, dict[str, list[str]]] = {"bm25": {}, "dense": {}, "hybrid": {}}
        for qid, text, vector in zip(ids, texts, vectors, strict=True):
            bm25 = self.keywords.search(text, EVERYONE, top)
            dense = self.vectors.search(vector, EVERYONE, top)
            runs["bm25"][qid] = [h.chunk.chunk_id for h in bm25]
            runs["dense"][qid] = [h.chunk.chunk_id for h in dense]
            runs["hybrid"][qid] = self.hybrid(text, EVERYONE, top)
        return runs

    def latency(
        self, texts: Sequence[str], vectors: np.ndarray, *, top: int, rounds: int
    ) -> dict[str, Any]:
        """p50/p95 of hybrid search (all chunks visible, then a 10 % filter) and each engine."""
        n = len(texts)
        dense_depth = self.settings.dense_depth or self.settings.top_k
        keyword_depth = self.settings.keyword_depth or self.settings.top_k
        # Hybrid search is awaited inside one running event loop, as the service calls
        # it; starting a loop per query would time asyncio's set-up, not the search.
        hybrid = {
            name: self._runner.run(self._timed_hybrid(texts, flt, top, rounds))
            for name, flt in (("hybrid", EVERYONE), ("hybrid_filtered", PUBLIC_ONLY))
        }
        cases: dict[str, Callable[[int], object]] = {
            "keyword": lambda i: self.keywords.search(texts[i], EVERYONE, keyword_depth),
            "dense": lambda i: self.vectors.search(vectors[i], EVERYONE, dense_depth),
        }
        out = {name: latency_summary(samples) for name, samples in hybrid.items()}
        out |= {
            name: latency_summary(timed_rounds(f, n, rounds=rounds)) for name, f in cases.items()
        }
        out["filtered_share"] = round(self.index.count(PUBLIC_ONLY) / max(self.index.count(), 1), 4)
        return out

    async def _timed_hybrid(
        self, texts: Sequence[str], flt: SearchFilter, top: int, rounds: int, warmup: int = 50
    ) -> list[float]:
        """Seconds per ``await retriever.search`` over every query, ``rounds`` times."""
        search = self.retriever.search
        for text in texts[:warmup]:
            await search(text, flt, top_n=top)
        samples: list[float] = []
        clock = time.perf_counter
        for _ in range(rounds):
            for text in texts:
                began = clock()
                await search(text, flt, top_n=top)
                samples.append(clock() - began)
        return samples

    def updates(
        self, texts: Callable[[int, int], list[str]], vectors: np.ndarray, total: int
    ) -> dict[str, Any]:
        """Add ``total`` chunks as new documents of 10 chunks, one replace_document each.

        Texts and vectors are copied from the corpus (``texts(start, stop)``), under new
        ids. The time runs until one search after the last write has returned, so an
        engine cannot defer the work past the measurement.
        """
        size = len(vectors)
        docs = []
        for d in range(max(total // CHUNKS_PER_DOC, 1)):
            start = (d * CHUNKS_PER_DOC) % max(size - CHUNKS_PER_DOC, 1)
            doc_id = f"update-{d}"
            chunks = [
                make_chunk(start + j, f"{doc_id}#{j}", doc_id, text)
                for j, text in enumerate(texts(start, start + CHUNKS_PER_DOC))
            ]
            record = DocumentRecord(
                tenant_id=TENANT,
                doc_id=doc_id,
                source=f"bench/{doc_id}",
                content_hash=doc_id,
                embed_model=MODEL,
                index_version="bench",
                chunk_ids=tuple(c.chunk_id for c in chunks),
            )
            docs.append((record, chunks, np.asarray(vectors[start : start + len(chunks)])))
        count = sum(len(c) for _, c, _ in docs)
        started = time.perf_counter()
        for record, chunks, block in docs:
            self.index.replace_document(record, chunks, block)
        written = time.perf_counter() - started
        self.keywords.search(docs[-1][1][0].text, EVERYONE, 1)
        self.vectors.search(docs[-1][2][0], EVERYONE, 1)
        seconds = time.perf_counter() - started
        result = _rate(count, seconds, documents=len(docs))
        result["first_search_after_s"] = round(seconds - written, 4)
        return result


def _rate(count: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "chunks": count,
        "seconds": round(seconds, 3),
        "chunks_per_s": round(count / seconds, 1) if seconds > 0 else None,
        **extra,
    }
