"""Peer hybrid retrievers for bench/retrieval.py: LangChain, LlamaIndex and Haystack.

Runs in its own virtual environment (bench/requirements-retrieval.txt), started by
bench/retrieval.py with a JSON spec file; prints one JSON object on stdout. It never
imports ragent. Every peer gets the same passages and the same precomputed vectors: query
vectors are looked up by text (a dict), so query embedding costs nothing in the timings.

    python bench/retrieval_peers.py SPEC.json
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from retrieval_data import Beir, latency_summary, load_beir, timed_rounds

PEERS = ("langchain", "llamaindex", "haystack")
# A peer is a function (data, passage vectors, query vectors, depth, top) -> search(i).
Search = Callable[[int], list[str]]


def langchain(data: Beir, docs: np.ndarray, queries: np.ndarray, depth: int, top: int) -> Search:
    """BM25Retriever (rank_bm25) + FAISS, fused by EnsembleRetriever (RRF, equal weights)."""
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    lookup = {text: vector.tolist() for text, vector in zip(data.queries, queries, strict=True)}

    class Cached(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("passages are embedded once, before the benchmark")

        def embed_query(self, text: str) -> list[float]:
            return lookup[text]

    metadatas = [{"id": d} for d in data.doc_ids]
    bm25 = BM25Retriever.from_texts(data.texts, metadatas=metadatas, k=depth)
    store = FAISS.from_embeddings(
        list(zip(data.texts, docs.tolist(), strict=True)), Cached(), metadatas=metadatas
    )
    dense = store.as_retriever(search_kwargs={"k": depth})
    ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])

    def search(i: int) -> list[str]:
        return [d.metadata["id"] for d in ensemble.invoke(data.queries[i])[:top]]

    return search


def llamaindex(data: Beir, docs: np.ndarray, queries: np.ndarray, depth: int, top: int) -> Search:
    """VectorStoreIndex + BM25Retriever (bm25s), fused by QueryFusionRetriever (RRF)."""
    import Stemmer
    from llama_index.core import VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    lookup = {text: vector.tolist() for text, vector in zip(data.queries, queries, strict=True)}

    class Cached(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return lookup[query]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return lookup[query]

        def _get_text_embedding(self, text: str) -> list[float]:
            raise AssertionError("passages are embedded once, before the benchmark")

    nodes = [
        TextNode(id_=d, text=t, embedding=v)
        for d, t, v in zip(data.doc_ids, data.texts, docs.tolist(), strict=True)
    ]
    index = VectorStoreIndex(nodes, embed_model=Cached(model_name="cached"))
    fusion = QueryFusionRetriever(
        [
            index.as_retriever(similarity_top_k=depth),
            BM25Retriever.from_defaults(
                nodes=nodes,
                similarity_top_k=depth,
                stemmer=Stemmer.Stemmer("english"),
                language="english",
            ),
        ],
        similarity_top_k=top,
        num_queries=1,  # no LLM query rewriting: the same single query for every system
        mode="reciprocal_rerank",
        use_async=False,  # one thread; the async path only adds an event loop per query
        llm=MockLLM(),
    )

    def search(i: int) -> list[str]:
        return [n.node.node_id for n in fusion.retrieve(data.queries[i])]

    return search


def haystack(data: Beir, docs: np.ndarray, queries: np.ndarray, depth: int, top: int) -> Search:
    """InMemoryBM25Retriever + InMemoryEmbeddingRetriever + DocumentJoiner (RRF)."""
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import (
        InMemoryBM25Retriever,
        InMemoryEmbeddingRetriever,
    )
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    store.write_documents(
        [
            Document(id=d, content=t, embedding=v)
            for d, t, v in zip(data.doc_ids, data.texts, docs.tolist(), strict=True)
        ]
    )
    pipeline = Pipeline()
    pipeline.add_component("bm25", InMemoryBM25Retriever(store, top_k=depth))
    pipeline.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=depth))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=top))
    pipeline.connect("bm25.documents", "joiner.documents")
    pipeline.connect("dense.documents", "joiner.documents")
    vectors = queries.tolist()

    def search(i: int) -> list[str]:
        inputs = {"bm25": {"query": data.queries[i]}, "dense": {"query_embedding": vectors[i]}}
        return [d.id for d in pipeline.run(inputs)["joiner"]["documents"]]

    return search


BUILDERS = {"langchain": langchain, "llamaindex": llamaindex, "haystack": haystack}
PACKAGES = {
    "langchain": ("langchain-classic", "langchain-community", "langchain-core", "rank-bm25"),
    "llamaindex": ("llama-index-core", "llama-index-retrievers-bm25", "bm25s"),
    "haystack": ("haystack-ai",),
}


def _versions(peer: str) -> dict[str, str]:
    found = {}
    for name in (*PACKAGES[peer], "faiss-cpu", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def run_peer(peer: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Build the peer on every data set, rank every query, time the timed data set."""
    result: dict[str, Any] = {"versions": _versions(peer), "datasets": {}}
    for item in spec["datasets"]:
        data = load_beir(Path(item["root"]))
        docs = np.load(item["corpus_vectors"])
        queries = np.load(item["query_vectors"])
        started = time.perf_counter()
        search = BUILDERS[peer](data, docs, queries, spec["depth"], spec["top"])
        built = time.perf_counter() - started
        rankings = {qid: search(i) for i, qid in enumerate(data.query_ids)}
        entry: dict[str, Any] = {"rankings": rankings, "build_seconds": round(built, 3)}
        if item.get("timed"):
            samples = timed_rounds(search, len(data.queries), rounds=spec["rounds"])
            entry["latency"] = latency_summary(samples)
        result["datasets"][data.name] = entry
        del search
    return result


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    spec = json.loads(Path(argv[0]).read_text())
    out: dict[str, Any] = {"peers": {}, "errors": {}}
    for peer in spec["peers"]:
        print(f"[peers] {peer}", file=sys.stderr, flush=True)
        try:
            out["peers"][peer] = run_peer(peer, spec)
        except Exception as exc:  # one broken peer must not hide the others' figures
            traceback.print_exc()
            out["errors"][peer] = f"{type(exc).__name__}: {exc}"
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
