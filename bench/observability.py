"""What tracing costs: one hybrid retrieval with spans off (exporter none) and on.

An embedded index of synthetic chunks (random words, random unit vectors) is searched
through ``HybridRetriever`` inside one running event loop, as the service does. Query
vectors come from a ``QueryCache`` over precomputed vectors, so the cache path is timed
but no model runs. Blocks of queries alternate between the two modes, so that load on
the machine hits both alike:

- ``off``: ``exporter: none``, the default: no tracer; each engine call still feeds
  its Prometheus histogram.
- ``on``: an SDK tracer provider with a batch processor and an exporter that drops
  the spans (the OTLP path without the network), sampling every trace.

It prints p50 and p95 per mode, the ratio of the p50s, and the cost of one span.

    .venv/bin/python bench/observability.py [--chunks 5000] [--queries 200] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from app.config.observability import ObservabilitySettings
from app.observability.tracing import setup_tracing, span
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.embedding.query_cache import QueryCache
from app.retrieval.retriever import HybridRetriever
from app.retrieval.types import Chunk, DocumentRecord, SearchFilter

DIM = 384
TENANT = "bench"
FLT = SearchFilter(TENANT)


class Dropping(SpanExporter):
    """Accepts spans and throws them away."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


class CachedVectors:
    """Query vectors drawn from a seeded generator, behind the service's query cache."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._cache = QueryCache(4096)

    model_name = "bench"
    dim = DIM
    max_tokens = 256

    def _vector(self, text: str) -> np.ndarray:
        digest = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(digest).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._cache.get_or_embed(self.model_name, text, self._vector)


def build(folder: Path, chunks: int, seed: int) -> tuple[EmbeddedIndex, list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(5000)]
    index = EmbeddedIndex(folder / "index.sqlite", dim=DIM)
    embedder = CachedVectors(seed)
    per_doc = 10
    for start in range(0, chunks, per_doc):
        doc = f"d{start}"
        batch = []
        for i in range(start, min(start + per_doc, chunks)):
            text = " ".join(rng.choice(words, 40))
            batch.append(
                Chunk(
                    chunk_id=f"c{i}",
                    doc_id=doc,
                    tenant_id=TENANT,
                    source=f"bench/{doc}",
                    text=text,
                    span=(0, len(text)),
                    content_hash=hashlib.sha1(text.encode()).hexdigest(),
                )
            )
        record = DocumentRecord(
            tenant_id=TENANT, doc_id=doc, source=f"bench/{doc}", content_hash=doc, embed_model="b"
        )
        index.replace_document(record, batch, embedder.embed_documents([c.text for c in batch]))
    index.flush()
    queries = [" ".join(rng.choice(words, 6)) for _ in range(1000)]
    return index, queries


async def block(retriever: HybridRetriever, queries: Sequence[str]) -> list[float]:
    samples = []
    for text in queries:
        began = time.perf_counter()
        await retriever.search(text, FLT)
        samples.append(time.perf_counter() - began)
    return samples


def span_cost(n: int = 100_000) -> float:
    """Microseconds per ``with span(...)`` with the current set-up."""
    began = time.perf_counter()
    for _ in range(n):
        with span("retrieval.keyword", engine="keyword", depth=20) as s:
            s.set(hits=20)
    return (time.perf_counter() - began) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragent-bench-obs-") as folder:
        index, queries = build(Path(folder), args.chunks, seed=7)
        retriever = HybridRetriever(
            embedder=CachedVectors(7),
            vectors=EmbeddedVectorIndex(index),
            keywords=EmbeddedKeywordIndex(index),
            top_k=20,
            concurrent=False,  # as app/resources.py builds it for the embedded engines
        )
        runner = asyncio.Runner()
        samples: dict[str, list[float]] = {"off": [], "on": []}
        exporter = Dropping()
        runner.run(block(retriever, queries[: args.queries]))  # warm-up (and cache fill)
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                provider = _tracing(mode, exporter)
                samples[mode] += runner.run(block(retriever, queries[: args.queries]))
                if provider is not None:
                    provider.force_flush()
        _tracing("off", exporter)
        cost_off = span_cost()
        provider = _tracing("on", exporter)
        cost_on = span_cost()
        assert provider is not None
        provider.force_flush()
        _tracing("off", exporter)
        runner.close()
        index.close()
    p50 = {m: statistics.median(s) * 1000 for m, s in samples.items()}
    p95 = {m: statistics.quantiles(s, n=20)[-1] * 1000 for m, s in samples.items()}
    searches = len(samples["off"])
    print(f"chunks {args.chunks}, {searches} searches per mode, {exporter.count} spans exported")
    for mode in ("off", "on"):
        print(f"  spans {mode:3}: hybrid p50 {p50[mode]:.3f} ms, p95 {p95[mode]:.3f} ms")
    print(f"  ratio on/off (p50): {p50['on'] / p50['off']:.3f}")
    print(f"  one span: {cost_off:.2f} us off, {cost_on:.2f} us on")


def _tracing(mode: str, exporter: SpanExporter) -> TracerProvider | None:
    """``off``: exporter none. ``on``: batched export, as ``otlp`` does, to ``exporter``."""
    if mode == "off":
        return setup_tracing(ObservabilitySettings())
    return setup_tracing(ObservabilitySettings(), exporter=exporter, batch=True)


if __name__ == "__main__":
    main()
