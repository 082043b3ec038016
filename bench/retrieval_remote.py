"""The remote profile of bench/retrieval.py: ragent's fusion over Weaviate + Elasticsearch.

One run starts (or finds) real Elasticsearch and Weaviate, loads the same chunks and vectors
into both through ragent's adapters, one tenant, and ranks every query with:

* ``ragent fusion``: the real ``HybridRetriever``, ``concurrent=True`` as app/resources.py
  builds it for remote engines, with the retrieval settings' defaults (top_k 20 from each
  engine, RRF k 60, equal weights); and, when the loaded profile's fusion settings differ,
  a second row with those;
* ``Weaviate hybrid``: Weaviate's own BM25F + vector fusion in one query
  (``WeaviateVectorIndex.hybrid``), relativeScore fusion, at the client's default alpha
  (0.7) and at the adapter's default (0.5);
* ``Elasticsearch BM25`` and ``Weaviate dense`` alone, as references.

Elasticsearch's own ``rrf`` retriever is sent once and its refusal reported. Quality on the
first BEIR set; latency at its size and at each synthetic size; load rates per engine.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ingest import BenchError, log
from retrieval_data import Beir, cached_embeddings, evaluate, latency_summary, load_beir
from retrieval_ragent import EVERYONE, QueryVectors
from retrieval_remote_engines import (
    es_rrf_probe,
    remote_engines,
    server_versions,
    tree_cpu_seconds,
)
from retrieval_synth import synthetic

from app.retrieval.remote.elastic import ElasticKeywordIndex
from app.retrieval.remote.weaviate import WeaviateVectorIndex
from app.retrieval.retriever import HybridRetriever
from app.settings import RetrievalSettings, load_settings

__all__ = ["FUSION", "WEAVIATE_HYBRID", "run_remote"]

TOP = 10
WARMUP = 50
FUSION = "ragent fusion"
WEAVIATE_HYBRID = "Weaviate hybrid"
ALPHAS = {WEAVIATE_HYBRID: 0.7, f"{WEAVIATE_HYBRID}, alpha 0.5": 0.5}
_FUSION_KEYS = ("top_k", "rrf_k", "fusion", "dense_weight", "keyword_weight")
_FUSION_KEYS += ("dense_depth", "keyword_depth")

Batches = Iterable[tuple[list[Any], np.ndarray]]
Search = Callable[[str, np.ndarray], Any]  # returns chunk ids, or an awaitable of them


class Stack:
    """One Elasticsearch index and one Weaviate collection, and the systems that search them."""

    def __init__(self, es: Any, wv: Any, size: int, dim: int, pids: dict[str, int]) -> None:
        self.es_client = es
        self.pids = pids  # engine -> server process id, for the engines this run started
        self.size = size
        self.index = f"ragent-bench-{size}-{os.getpid()}"
        collection = f"RagentBench{size}x{os.getpid()}"
        # refresh=False: bulk loading; one refresh at the end makes everything searchable.
        self.keywords = ElasticKeywordIndex(es, self.index, refresh=False, replicas=0)
        self.vectors = WeaviateVectorIndex(wv, collection, dim=dim)
        self.degraded = 0

    def drop(self) -> None:
        self.keywords.drop()
        self.vectors.drop()

    def load(self, batches: Batches) -> dict[str, Any]:
        """Upsert every batch into each engine in turn; chunks/s per engine.

        ``client_cpu_s`` is this process's CPU time in each engine's upserts (the adapter and
        client side); ``server_cpu_s`` the server's CPU time (its process tree) over the
        whole load, background work such as Elasticsearch's merges included, for the
        engines this run started.
        """
        spent = {"elasticsearch": [0.0, 0.0], "weaviate": [0.0, 0.0]}  # wall, client CPU
        count = 0
        server = {e: tree_cpu_seconds(pid) for e, pid in self.pids.items()}

        def timed(engine: str, write: Callable[[], object]) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            write()
            spent[engine][0] += time.perf_counter() - wall
            spent[engine][1] += time.process_time() - cpu

        for chunks, vectors in batches:
            timed("elasticsearch", lambda: self.keywords.upsert(chunks))  # noqa: B023
            timed("weaviate", lambda: self.vectors.upsert(chunks, vectors))  # noqa: B023
            count += len(chunks)
        timed("elasticsearch", lambda: self.es_client.indices.refresh(index=self.index))
        for engine, before in server.items():
            after = tree_cpu_seconds(self.pids[engine])
            server[engine] = None if before is None or after is None else after - before
        for engine, (seconds, _) in spent.items():
            log(f"{engine}: {count:,} chunks in {seconds:.1f} s ({count / seconds:,.0f}/s)")
        counted = {"elasticsearch": self.keywords.count(), "weaviate": self.vectors.count()}
        if any(n != count for n in counted.values()):
            raise BenchError(f"loaded {count:,} chunks, but the engines hold {counted}")
        return {
            engine: {
                "chunks": count,
                "seconds": round(seconds, 2),
                "chunks_per_s": round(count / seconds, 1),
                "client_cpu_s": round(cpu, 2),
                "server_cpu_s": None if server.get(engine) is None else round(server[engine], 1),
            }
            for engine, (seconds, cpu) in spent.items()
        }

    def systems(self, configs: dict[str, RetrievalSettings], queries: QueryVectors) -> dict:
        """Every system by name: ``search(text, vector)`` -> chunk ids, best first."""

        def fusion(settings: RetrievalSettings) -> Search:
            retriever = HybridRetriever(
                embedder=queries,
                vectors=self.vectors,
                keywords=self.keywords,
                top_k=settings.top_k,
                top_n=TOP,
                rrf_k=settings.rrf_k,
                fusion=settings.fusion,
                dense_weight=settings.dense_weight,
                keyword_weight=settings.keyword_weight,
                dense_depth=settings.dense_depth,
                keyword_depth=settings.keyword_depth,
                concurrent=True,  # as app/resources.py builds it for remote engines
                engine_timeout_s=settings.engine_timeout_s,
            )

            async def search(text: str, vector: np.ndarray) -> list[str]:
                got = await retriever.retrieve(text, EVERYONE, top_n=TOP)
                self.degraded += bool(got.degraded)
                return [h.chunk.chunk_id for h in got.hits]

            return search

        def hybrid(alpha: float) -> Search:
            def search(text: str, vector: np.ndarray) -> list[str]:
                hits = self.vectors.hybrid(text, vector, EVERYONE, TOP, alpha=alpha)
                return [h.chunk.chunk_id for h in hits]

            return search

        out: dict[str, Search] = {name: fusion(s) for name, s in configs.items()}
        out |= {name: hybrid(alpha) for name, alpha in ALPHAS.items()}
        out["Elasticsearch BM25"] = lambda text, vector: [
            h.chunk.chunk_id for h in self.keywords.search(text, EVERYONE, TOP)
        ]
        out["Weaviate dense"] = lambda text, vector: [
            h.chunk.chunk_id for h in self.vectors.search(vector, EVERYONE, TOP)
        ]
        return out


async def _call(search: Search, text: str, vector: np.ndarray) -> list[str]:
    got = search(text, vector)
    return await got if asyncio.iscoroutine(got) else got


async def _rank(systems: dict[str, Search], ids, texts, vectors) -> dict[str, dict]:
    runs: dict[str, dict[str, list[str]]] = {name: {} for name in systems}
    for qid, text, vector in zip(ids, texts, vectors, strict=True):
        for name, search in systems.items():
            runs[name][qid] = await _call(search, text, vector)
    return runs


async def _time(systems: dict[str, Search], texts, vectors, rounds: int) -> dict[str, Any]:
    """Per-search seconds of every system; each query goes to every system in turn.

    The order of the systems rotates with each query, so a burst of load on the shared
    machine hits all of them alike. Everything is awaited in one running event loop, as
    the service calls the retriever; the synchronous searches are plain calls.
    """
    names = list(systems)
    for i in range(min(WARMUP, len(texts))):
        for name in names:
            await _call(systems[name], texts[i], vectors[i])
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    turn = 0
    for _ in range(rounds):
        for text, vector in zip(texts, vectors, strict=True):
            turn += 1
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                began = clock()
                await _call(systems[name], text, vector)
                samples[name].append(clock() - began)
    return {name: latency_summary(s) for name, s in samples.items()}


def _configs(profile: RetrievalSettings, label: str) -> dict[str, RetrievalSettings]:
    defaults = RetrievalSettings()
    configs = {FUSION: defaults}
    if profile.model_dump(include=set(_FUSION_KEYS)) != defaults.model_dump(
        include=set(_FUSION_KEYS)
    ):
        configs[f"{FUSION}, {label}"] = profile
    return configs


def _describe(configs: dict[str, RetrievalSettings]) -> dict[str, dict[str, Any]]:
    return {name: s.model_dump(include=set(_FUSION_KEYS)) for name, s in configs.items()}


@dataclass
class Corpus:
    """What one size loads and asks: chunks in upsert batches, and the queries."""

    name: str
    batches: Batches
    query_texts: list[str]
    query_vectors: np.ndarray
    rounds: int
    data: Beir | None = None


def _corpus(size: int, data: Beir | None, args: Any, model: str, make: Callable, ids: Any):
    """The BEIR set at its own size (its cached vectors), else the synthetic corpus."""
    if data is not None and size == len(data.doc_ids):
        from app.retrieval.embedding.embedder import LocalEmbedder

        embed = LocalEmbedder(model).embed_documents  # only on a cache miss
        docs, queries = cached_embeddings(data, args.cache, model, embed, log)
        texts = data.texts
        loader = make(data.doc_ids, lambda a, b: texts[a:b], docs, len(texts), data.titles)
        return Corpus(data.name, loader, data.queries, queries, args.rounds, data)
    syn = synthetic(args.cache, size, log=log)
    rounds = max(1, args.rounds * 50 // len(syn.query_texts))  # about as many samples
    loader = make(ids, syn.texts, syn.vectors, size)
    return Corpus("synthetic", loader, syn.query_texts, syn.query_vectors, rounds)


def _measure(stack: Stack, corpus: Corpus, configs: dict, result: dict[str, Any]) -> None:
    size = str(stack.size)
    log(f"loading {stack.size:,} {corpus.name} chunks into Elasticsearch and Weaviate")
    result["load"][size] = stack.load(corpus.batches)
    texts, vectors = corpus.query_texts, corpus.query_vectors
    systems = stack.systems(configs, QueryVectors(texts, vectors))
    if "es_rrf" not in result:
        result["es_rrf"] = es_rrf_probe(stack.es_client, stack.index, texts[0], vectors[0], TOP)
    if (data := corpus.data) is not None:
        runs = asyncio.run(_rank(systems, data.query_ids, texts, vectors))
        result["quality"][data.name] = {
            "queries": len(data.judged),
            "systems": {name: evaluate(run, data) for name, run in runs.items()},
        }
    log(f"timing {len(systems)} systems: {len(texts)} queries x {corpus.rounds} at {size}")
    result["speed"][size] = {
        "corpus": corpus.name,
        "systems": asyncio.run(_time(systems, texts, vectors, corpus.rounds)),
        "degraded_searches": stack.degraded,
    }


def run_remote(args: Any, batches: Callable[..., Batches], ids: Any) -> dict[str, Any]:
    """The whole remote profile; ``batches`` and ``ids`` are bench/retrieval.py's helpers."""
    from app.retrieval.remote import elastic, weaviate

    settings = load_settings(args.config)
    label = f"config {args.config.name}" if args.config else f"profile {settings.profile}"
    configs = _configs(settings.retrieval, label)
    data = load_beir(Path(args.datasets[0])) if args.datasets else None
    result: dict[str, Any] = {
        "profile": "remote",
        "systems": _describe(configs) | {n: {"alpha": a} for n, a in ALPHAS.items()},
        "quality": {},
        "speed": {},
        "load": {},
    }
    with remote_engines(dict(os.environ), log) as env:
        result["engines"] = {k: v for k, v in env.items() if k.endswith("_source")}
        pids = {k.removesuffix("_pid"): int(v) for k, v in env.items() if k.endswith("_pid")}
        es = elastic.connect(env["ELASTICSEARCH_URL"])
        wv = weaviate.connect(env["WEAVIATE_URL"], grpc_port=int(env["WEAVIATE_GRPC_PORT"]))
        try:
            result["versions"] = server_versions(es, wv)
            for size in args.sizes:
                corpus = _corpus(size, data, args, settings.embed.model, batches, ids)
                stack = Stack(es, wv, size, int(corpus.query_vectors.shape[1]), pids)
                try:
                    _measure(stack, corpus, configs, result)
                finally:
                    stack.drop()
        finally:
            wv.close()
            es.close()
    return result
