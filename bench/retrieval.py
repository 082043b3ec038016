"""Retrieval benchmark: ragent's hybrid retrieval next to LangChain, LlamaIndex and Haystack.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/retrieval.py [--sizes 5000,100000,1000000] [--config FILE] [--json]
    .venv/bin/python bench/retrieval.py --profile remote     # Weaviate + Elasticsearch

Quality (nDCG@10, Recall@10, MRR@10) on BEIR-format data sets and search latency with query
embedding excluded, with the same all-MiniLM-L6-v2 vectors for every system; the peers run
in a virtual environment of their own. ``--profile remote`` measures ragent's fusion over
real Weaviate + Elasticsearch next to Weaviate's own hybrid query instead
(bench/retrieval_remote.py). It prints figures and PASS/FAIL per goal, and never
fails on a missed goal: the exit code is 0 unless something broke (2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from corpus import default_cache
from ingest import BenchError, child_env, log, run_child
from retrieval_data import (
    Beir,
    DataError,
    cached_embeddings,
    embedding_folder,
    evaluate,
    load_beir,
)
from retrieval_report import goals, print_report
from retrieval_synth import synthetic

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "retrieval"
REQUIREMENTS = REPO / "bench" / "requirements-retrieval.txt"
PEERS = ("langchain", "llamaindex", "haystack")
TOP = 10


def _batches(
    ids: Sequence[str],
    texts: Any,
    vectors: np.ndarray,
    size: int,
    titles: Sequence[str] | None = None,
) -> Iterator[tuple]:
    """Chunks and their vectors in upsert batches; ``texts(start, stop)`` gives the texts."""
    from retrieval_ragent import BULK_BATCH, make_chunk

    for start in range(0, size, BULK_BATCH):
        stop = min(start + BULK_BATCH, size)
        chunks = [
            make_chunk(i, ids[i], ids[i], text, titles[i] if titles else "")
            for i, text in zip(range(start, stop), texts(start, stop), strict=True)
        ]
        yield chunks, np.asarray(vectors[start:stop], np.float32)


class _Ids:
    """Synthetic chunk ids ``s0``, ``s1``, ... without a million-item list."""

    def __getitem__(self, i: int) -> str:
        return f"s{i}"


def ragent_real(
    data: Beir, docs: np.ndarray, queries: np.ndarray, settings: Any, args: Any, timed: bool
) -> dict[str, Any]:
    """Index one data set; rank its queries three ways; time it when it is the 5k size."""
    from retrieval_ragent import Engine, QueryVectors

    with tempfile.TemporaryDirectory(prefix="ragent-retrieval-") as folder:
        engine = Engine(Path(folder), docs.shape[1], settings, QueryVectors(data.queries, queries))
        try:
            texts = data.texts
            load = engine.load(
                _batches(data.doc_ids, lambda a, b: texts[a:b], docs, len(texts), data.titles)
            )
            runs = engine.rankings(data.query_ids, data.queries, queries, TOP)
            out: dict[str, Any] = {
                "quality": {name: evaluate(run, data) for name, run in runs.items()}
            }
            if timed:
                log(f"ragent: timing {len(data.queries)} queries x {args.rounds} on {data.name}")
                out["speed"] = {
                    "chunks": len(texts),
                    "corpus": data.name,
                    **engine.latency(data.queries, queries, top=TOP, rounds=args.rounds),
                    "load": load,
                    "updates": engine.updates(lambda a, b: texts[a:b], docs, args.updates),
                }
            return out
        finally:
            engine.close()


def ragent_synthetic(size: int, settings: Any, args: Any) -> dict[str, Any]:
    from retrieval_ragent import Engine, QueryVectors

    syn = synthetic(args.cache, size, log=log)
    with tempfile.TemporaryDirectory(prefix="ragent-retrieval-") as folder:
        queries = QueryVectors(syn.query_texts, syn.query_vectors)
        engine = Engine(Path(folder), syn.vectors.shape[1], settings, queries)
        try:
            log(f"ragent: building the {size:,}-chunk synthetic index")
            started = time.perf_counter()
            load = engine.load(_batches(_Ids(), syn.texts, syn.vectors, size))
            load["build_wall_seconds"] = round(time.perf_counter() - started, 1)
            log(f"built in {load['build_wall_seconds']} s (upserts {load['seconds']} s)")
            rounds = max(1, args.rounds * 50 // len(syn.query_texts))  # about as many samples
            log(f"ragent: timing {len(syn.query_texts)} queries x {rounds} at {size:,} chunks")
            latency = engine.latency(syn.query_texts, syn.query_vectors, top=TOP, rounds=rounds)
            updates = engine.updates(syn.texts, syn.vectors, args.updates)
            return {
                "chunks": size,
                "corpus": "synthetic",
                **latency,
                "load": load,
                "updates": updates,
            }
        finally:
            engine.close()


def peer_python(args: argparse.Namespace) -> Path:
    """The peers' interpreter: ``--peer-python``, or a venv built from the requirements."""
    if args.peer_python:
        path = Path(args.peer_python)
        if not path.is_file():
            raise BenchError(f"--peer-python {path} does not exist")
        return path
    venv = args.cache / "venv-retrieval"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return python
    log(f"creating the peers' venv {venv} from {REQUIREMENTS.name} (a minute or two)")
    for cmd in (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise BenchError(f"{' '.join(cmd[:4])}: exit {proc.returncode}: {tail}")
    stamp.write_text(digest)
    return python


def run_peers(
    args: argparse.Namespace, sets: list[tuple[Beir, Path]], timed: str | None, depth: int
) -> dict[str, Any]:
    """Run every peer in its own venv, in a child process; returns its JSON report."""
    python = peer_python(args)
    with tempfile.TemporaryDirectory(prefix="ragent-peers-") as work:
        spec = {
            "peers": args.peers,
            "depth": depth,
            "top": TOP,
            "rounds": args.rounds,
            "datasets": [
                {
                    "root": str(data.root),
                    "corpus_vectors": str(folder / "corpus.npy"),
                    "query_vectors": str(folder / "queries.npy"),
                    "timed": data.name == timed,
                }
                for data, folder in sets
            ],
        }
        path = Path(work) / "spec.json"
        path.write_text(json.dumps(spec))
        cmd = [str(python), str(REPO / "bench" / "retrieval_peers.py"), str(path)]
        env = child_env(args.threads, HAYSTACK_TELEMETRY_ENABLED="False", DO_NOT_TRACK="1")
        child = run_child(cmd, env=env, cwd=Path(work))
    report = child.json()
    if child.returncode != 0 or report is None:
        raise BenchError(f"peer worker exited {child.returncode}:\n{child.tail()}")
    for peer, error in report["errors"].items():
        log(f"{peer} failed: {error}")
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.retrieval.embedding.embedder import LocalEmbedder
    from app.settings import load_settings

    settings = load_settings(args.config)
    retrieval = settings.retrieval
    sets = [load_beir(Path(d)) for d in args.datasets]
    embedder = LocalEmbedder(settings.embed.model, batch_size=settings.embed.batch_size)
    vectors = {
        d.name: cached_embeddings(
            d, args.cache, settings.embed.model, embedder.embed_documents, log
        )
        for d in sets
    }
    real_sizes = {len(d.doc_ids): d.name for d in sets[:1]}
    timed = next((real_sizes[s] for s in args.sizes if s in real_sizes), None)
    result: dict[str, Any] = {
        "settings": {
            "config": str(args.config) if args.config else "default",
            **retrieval.model_dump(include={"top_k", "rrf_k", "fusion", "dense_weight"}),
            **retrieval.model_dump(include={"keyword_weight", "dense_depth", "keyword_depth"}),
            "embed_model": settings.embed.model,
        },
        "quality": {},
        "speed": {},
    }
    for data in sets:
        log(f"ragent: indexing {data.name} ({len(data.doc_ids):,} chunks)")
        docs, queries = vectors[data.name]
        out = ragent_real(data, docs, queries, retrieval, args, data.name == timed)
        result["quality"][data.name] = {
            "queries": len(data.judged),
            "systems": {f"ragent {k}": v for k, v in out["quality"].items()},
        }
        if "speed" in out:
            result["speed"][str(len(data.doc_ids))] = {"ragent": out["speed"], "peers": {}}
    if args.peers and sets:
        folders = [embedding_folder(d, args.cache, settings.embed.model) for d in sets]
        log(f"peers ({', '.join(args.peers)}) in their own venv")
        report = run_peers(args, list(zip(sets, folders, strict=True)), timed, retrieval.top_k)
        result["peer_errors"] = report["errors"]
        result["peer_versions"] = {p: r["versions"] for p, r in report["peers"].items()}
        for data in sets:
            for peer, r in report["peers"].items():
                entry = r["datasets"][data.name]
                systems = result["quality"][data.name]["systems"]
                systems[peer] = evaluate(entry["rankings"], data)
                if "latency" in entry:
                    speed = result["speed"][str(len(data.doc_ids))]
                    speed["peers"][peer] = {**entry["latency"], "build_s": entry["build_seconds"]}
    for size in args.sizes:
        if size not in real_sizes:
            result["speed"][str(size)] = {"ragent": ragent_synthetic(size, retrieval, args)}
    result["goals"] = goals(result)
    result["versions"] = versions()
    return result


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in ("ragent", "numpy", "tantivy", "usearch", "hnswlib", "faiss-cpu"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        choices=("embedded", "remote"),
        default="embedded",
        help="embedded engines and peers, or Weaviate + Elasticsearch (first data set only)",
    )
    parser.add_argument(
        "--datasets",
        default=f"{DATA / 'dbpedia'},{DATA / 'business-reports'}",
        help="BEIR folders, comma-separated, or 'none'; the first is also timed at its size",
    )
    parser.add_argument("--sizes", default="5000,100000", help="chunk counts to time")
    parser.add_argument("--config", type=Path, help="ragent config file (fusion settings)")
    parser.add_argument("--cache", type=Path, default=default_cache() / "retrieval")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the queries")
    parser.add_argument("--updates", type=int, default=5000, help="chunks written as updates")
    parser.add_argument("--peers", default=",".join(PEERS), help="peers to run, or 'none'")
    parser.add_argument("--peer-python", help="the peers' interpreter (default: own venv)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s})
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if any(s < 100 for s in args.sizes):
        parser.error("--sizes: each size must be at least 100 chunks")
    if args.rounds <= 0 or args.updates <= 0:
        parser.error("--rounds and --updates must be positive")
    # Absolute: the peers run in a child process with a working directory of their own.
    args.datasets = [str(Path(d).resolve()) for d in args.datasets.split(",") if d and d != "none"]
    peers = [p for p in args.peers.split(",") if p and p != "none"]
    if unknown := sorted(set(peers) - set(PEERS)):
        parser.error(f"--peers: unknown {', '.join(unknown)} (known: {', '.join(PEERS)})")
    args.peers = peers
    args.cache = args.cache.expanduser()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from app.settings import SettingsError

    try:
        result = run(args) if args.profile == "embedded" else remote(args)
    except (BenchError, DataError, SettingsError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    elif args.profile == "remote":
        from retrieval_remote_report import print_remote_report

        print_remote_report(result)
    else:
        print_report(result)
    return 0


def remote(args: argparse.Namespace) -> dict[str, Any]:
    """The remote profile (bench/retrieval_remote.py); an engine's error is a breakage."""
    from elasticsearch import ApiError, TransportError
    from retrieval_remote import run_remote
    from retrieval_remote_report import ratios
    from weaviate.exceptions import WeaviateBaseError

    try:
        result = run_remote(args, _batches, _Ids())
    except (ApiError, TransportError, WeaviateBaseError) as exc:
        raise BenchError(f"{type(exc).__name__}: {exc}") from exc
    result["ratios"] = ratios(result)
    return result


if __name__ == "__main__":
    sys.exit(main())
