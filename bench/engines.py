"""Embedded engine candidates side by side: why ragent uses tantivy and numpy/faiss HNSW.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/engines.py [--sizes 5000,100000] [--million] [--json]

Keyword: tantivy (through ragent's TantivyKeywords and directly), SQLite FTS5, bm25s and
rank_bm25 on a BEIR folder (dbpedia, 5k passages): latency at k=20 with an all-admitting and
a 10 % tenant+ACL filter, nDCG@10, build rate, and 100 inserts/deletes after the build.
Vectors: ragent's DenseIndex, numpy exact, faiss flat, faiss HNSW, hnswlib and usearch on
random unit vectors (dim 384): latency at k=20 unfiltered and with a 10 % filter,
recall@20 against exact search, add rate, deletes.

ragent's engines and the ones it ships with run in this process (the project's venv); bm25s,
rank_bm25, hnswlib and usearch run in a worker in a venv of their own, built on first use
from bench/requirements-engines.txt. The loop sends each query to every engine in turn, in
a rotating order, so a noisy neighbour hits all engines alike. Exit code 0, or 2 when
something breaks.
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
from pathlib import Path
from typing import Any

import numpy as np
from corpus import default_cache
from engines_common import FILTERS, Host, K, admits, mask_of, percentiles, synthetic_vectors
from engines_report import print_report
from ingest import BenchError, log

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "retrieval" / "dbpedia"
REQUIREMENTS = REPO / "bench" / "requirements-engines.txt"
DIM = 384
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RAGENT_VERSIONS = ("tantivy", "faiss-cpu", "numpy", "ragent")
PEER_VERSIONS = ("bm25s", "rank-bm25", "PyStemmer", "hnswlib", "usearch", "numpy")


class Worker:
    """The worker process (bench/engines_worker.py): a Host at the other end of a pipe."""

    def __init__(self, python: Path) -> None:
        env = {**os.environ, **ONE_THREAD}
        script = REPO / "bench" / "engines_worker.py"
        self.proc = subprocess.Popen(
            [str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the worker exited ({self.proc.wait()}); see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            sys.stderr.write(reply.get("trace", ""))
            raise BenchError(f"worker: {msg['op']} {msg.get('engine', '')}: {reply['error']}")
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Local(Host):
    """This process's host; an engine's exception stops the run like a worker's does."""

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().handle(msg)
        except (ImportError, RuntimeError, ValueError, OSError) as exc:
            raise BenchError(f"{msg['op']} {msg.get('engine', '')}: {exc}") from exc


def engine_python(args: argparse.Namespace) -> Path:
    """``--engine-python``, or the benchmark's venv, built from its requirements if stale."""
    if args.engine_python:
        path = Path(args.engine_python)
        if not path.is_file():
            raise BenchError(f"--engine-python {path} does not exist")
        return path
    venv = args.cache / "venv-engines"
    python, stamp = venv / "bin" / "python", venv / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return python
    log(f"creating {venv} from {REQUIREMENTS.name} (hnswlib compiles: a minute or two)")
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


def round_robin(
    hosts: dict[str, Any], queries: int, rounds: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[list[int]]]]]:
    """Send every query to every engine in turn; round 0 is a warm-up that gives the results.

    Returns each engine's per-filter latencies (seconds) and its warm-up results per query.
    """
    names = list(hosts)
    for host in {id(h): h for h in hosts.values()}.values():
        host.handle({"op": "gc", "enable": False})
    seconds = {n: {f: [] for f in FILTERS} for n in names}
    results = {n: {f: [[] for _ in range(queries)] for f in FILTERS} for n in names}
    turn = 0
    for r in range(rounds + 1):
        for q in range(queries):
            for flt in FILTERS:
                turn += 1
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    msg = {"op": "search", "engine": name, "q": q, "filter": flt, "k": K}
                    reply = hosts[name].handle(msg)
                    if r == 0:
                        results[name][flt][q] = reply["ids"]
                    else:
                        seconds[name][flt].append(reply["s"])
    for host in {id(h): h for h in hosts.values()}.values():
        host.handle({"op": "gc", "enable": True})
    return seconds, results


def build_all(hosts: dict[str, Any], count: int, unit: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name, host in hosts.items():
        log(f"building {name} ({count:,} {unit})")
        reply = host.handle({"op": "build", "engine": name})
        out[name] = {"filter": reply["filter"], "build_rate": round(count / reply["seconds"])}
    return out


def keyword_section(args: argparse.Namespace, local: Local, worker: Worker) -> dict[str, Any]:
    from engines_keyword import PEER_SIDE, RAGENT_SIDE

    from app.evals.beir import load_beir
    from app.evals.ranking_metrics import Judge

    data = load_beir(args.dataset)
    doc_ids = list(data.corpus)
    qids = data.judged
    hosts: dict[str, Any] = {n: local for n in RAGENT_SIDE} | {n: worker for n in PEER_SIDE}
    with tempfile.TemporaryDirectory(prefix="ragent-engines-") as folder:
        path = Path(folder) / "text.json"
        passages = [(d.title, d.text) for d in data.corpus.values()]
        queries = [data.queries[q] for q in qids]
        path.write_text(json.dumps({"passages": passages, "queries": queries}))
        for host in (local, worker):
            host.handle({"op": "load_text", "path": str(path)})
    rows = build_all(hosts, len(doc_ids), "passages")
    log(f"keyword: {len(qids)} queries x {args.rounds} rounds x {len(hosts)} engines, round-robin")
    seconds, results = round_robin(hosts, len(qids), args.rounds)
    judge = Judge(data.qrels)
    for name, host in hosts.items():
        found = results[name]["all"]
        rankings = {q: [doc_ids[i] for i in ids] for q, ids in zip(qids, found, strict=True)}
        row = rows[name]
        row["ndcg@10"] = round(judge.scores(rankings).mean["ndcg@10"], 4)
        row["leaks"] = sum(not admits(i, "10%") for ids in results[name]["10%"] for i in ids)
        for flt in FILTERS:
            row[flt] = percentiles(seconds[name][flt])
        log(f"updates: {name}")
        row["updates"] = host.handle({"op": "updates", "engine": name})
        host.handle({"op": "drop", "engine": name})
    return {"dataset": data.name, "passages": len(doc_ids), "queries": len(qids), "engines": rows}


def vector_section(
    args: argparse.Namespace, local: Local, worker: Worker, kind: str, size: int
) -> dict[str, Any]:
    from engines_vector import PEER_SIDE, RAGENT_SIDE

    vectors, queries = synthetic_vectors(kind, size, args.vector_queries, DIM, seed=size)
    hosts: dict[str, Any] = {n: local for n in RAGENT_SIDE} | {n: worker for n in PEER_SIDE}
    with tempfile.TemporaryDirectory(prefix="ragent-engines-") as folder:
        paths = {"vectors": str(Path(folder) / "v.npy"), "queries": str(Path(folder) / "q.npy")}
        np.save(paths["vectors"], vectors)
        np.save(paths["queries"], queries)
        for host in (local, worker):
            host.handle({"op": "load_vectors", **paths})
        rows = build_all(hosts, size, "vectors")
    truth = {}
    for flt in FILTERS:
        rows_ok = np.flatnonzero(mask_of(size, flt))
        scores = vectors[rows_ok] @ queries.T
        top = np.argsort(-scores, axis=0, kind="stable")[:K].T
        truth[flt] = [set(rows_ok[t].tolist()) for t in top]
    rounds = max(1, args.rounds * 50 // args.vector_queries)
    log(f"{kind} vectors {size:,}: {args.vector_queries} queries x {rounds} rounds, round-robin")
    seconds, results = round_robin(hosts, args.vector_queries, rounds)
    for name, host in hosts.items():
        row = rows[name]
        for flt in FILTERS:
            found = results[name][flt]
            recall = np.mean([len(set(f) & t) / K for f, t in zip(found, truth[flt], strict=True)])
            row[flt] = {**percentiles(seconds[name][flt]), "recall@20": round(float(recall), 4)}
        row["leaks"] = sum(not admits(i, "10%") for ids in results[name]["10%"] for i in ids)
        row["failed"] = host.handle({"op": "stats", "engine": name})["failed"]
        log(f"updates: {name}")
        row["updates"] = host.handle({"op": "updates", "engine": name})
        host.handle({"op": "drop", "engine": name})
    return {
        "kind": kind,
        "size": size,
        "dim": DIM,
        "queries": args.vector_queries,
        "engines": rows,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import faiss
    from engines_keyword import RAGENT_SIDE as KEYWORD
    from engines_vector import RAGENT_SIDE as VECTOR
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    local = Local({**KEYWORD, **VECTOR})
    worker = Worker(engine_python(args))
    try:
        started = time.perf_counter()
        result: dict[str, Any] = {"k": K, "rounds": args.rounds}
        if "keyword" in args.only:
            result["keyword"] = keyword_section(args, local, worker)
        if "vectors" in args.only:
            result["vectors"] = [
                vector_section(args, local, worker, kind, size)
                for kind in args.vectors
                for size in args.sizes
            ]
        import sqlite3

        result["versions"] = {
            "ragent venv": local.handle({"op": "versions", "names": RAGENT_VERSIONS}),
            "sqlite": sqlite3.sqlite_version,
            "engine venv": worker.handle({"op": "versions", "names": PEER_VERSIONS}),
        }
        result["seconds"] = round(time.perf_counter() - started, 1)
        return result
    finally:
        worker.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATA, help="BEIR folder (keyword)")
    parser.add_argument("--sizes", default="5000,100000", help="vector counts")
    parser.add_argument("--million", action="store_true", help="add 1,000,000 vectors")
    parser.add_argument("--rounds", type=int, default=20, help="timed passes over the queries")
    parser.add_argument("--vector-queries", type=int, default=200)
    parser.add_argument("--vectors", default="random", help="random, clustered or random,clustered")
    parser.add_argument("--only", default="keyword,vectors", help="keyword, vectors or both")
    parser.add_argument("--cache", type=Path, default=default_cache() / "engines")
    parser.add_argument("--engine-python", help="interpreter with the candidates installed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        sizes = {int(s.replace("_", "")) for s in args.sizes.split(",") if s}
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if args.million:
        sizes.add(1_000_000)
    args.sizes = sorted(sizes)
    if any(s < 1000 for s in args.sizes) or args.rounds <= 0 or args.vector_queries <= 0:
        parser.error("--sizes must be at least 1000; --rounds, --vector-queries positive")
    args.vectors = list(dict.fromkeys(v for v in args.vectors.split(",") if v))
    if not args.vectors or set(args.vectors) - {"random", "clustered"}:
        parser.error("--vectors: random, clustered, or random,clustered")
    args.only = {p for p in args.only.split(",") if p}
    if not args.only or args.only - {"keyword", "vectors"}:
        parser.error("--only: keyword, vectors, or keyword,vectors")
    args.cache = args.cache.expanduser()
    return args


def main(argv: list[str] | None = None) -> int:
    from app.evals.beir import BeirError

    args = parse_args(argv)
    try:
        result = run(args)
    except (BenchError, BeirError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
