"""What bench/engines.py shares with its worker: filters, the host protocol, update checks.

A :class:`Host` owns engines and answers messages (plain dicts). bench/engines.py keeps one
host in its own process (ragent's engines, in the project's venv) and talks to a second one
over a pipe (the other candidates, in the benchmark's venv, bench/engines_worker.py), so one
loop can send the same query to every engine in turn. Only the engine call is timed, inside
the process that runs it.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

K = 20
GROUPS = 10
"""Every document belongs to ACL group ``id % GROUPS``."""
NARROW_GROUP = 3
FILTERS = ("all", "10%")
"""An all-admitting tenant+ACL filter, and one that admits group 3 only (10 %)."""
UPDATE_DOCS = 100
MARKER = "xylophonist"
"""A word no dbpedia passage holds: the inserted documents carry it."""


def admits(doc_id: int, flt: str) -> bool:
    """Whether the filter ``flt`` admits document ``doc_id``."""
    return flt == "all" or doc_id % GROUPS == NARROW_GROUP


def groups_of(flt: str) -> frozenset[int]:
    """The ACL groups a caller with filter ``flt`` holds."""
    return frozenset(range(GROUPS)) if flt == "all" else frozenset({NARROW_GROUP})


def mask_of(ids: np.ndarray | int, flt: str) -> np.ndarray:
    """A boolean array: which of ``ids`` (or of ``0..ids-1``) the filter admits."""
    ids = np.arange(ids) if isinstance(ids, int) else np.asarray(ids)
    return np.ones(ids.shape, bool) if flt == "all" else ids % GROUPS == NARROW_GROUP


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def synthetic_vectors(
    kind: str, size: int, queries: int, dim: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and queries: ``random`` (uniform on the sphere) or ``clustered``.

    Uniform vectors are HNSW's worst case: in 384 dimensions every point is almost equally
    far from a query, so graph search has no gradient to follow. ``clustered`` puts the
    points and queries around one centre per 50 points (cosine to the centre about 0.8),
    which is closer to how text embeddings lie.
    """
    rng = np.random.default_rng(seed)
    if kind == "random":
        docs = rng.standard_normal((size, dim), np.float32)
        return _unit(docs), _unit(rng.standard_normal((queries, dim), np.float32))
    centres = _unit(rng.standard_normal((max(size // 50, 1), dim), np.float32))
    noise = 0.75 / np.sqrt(dim)
    docs = centres[rng.integers(0, len(centres), size)]
    docs = docs + rng.normal(0, noise, (size, dim)).astype(np.float32)
    picks = centres[rng.integers(0, len(centres), queries)]
    picks = picks + rng.normal(0, noise, (queries, dim)).astype(np.float32)
    return _unit(docs).astype(np.float32), _unit(picks).astype(np.float32)


def versions(names: Sequence[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class Host:
    """Engines of one process, driven by messages; see the module docstring."""

    def __init__(self, factories: dict[str, Callable[[], Any]]) -> None:
        self.factories = factories
        self.engines: dict[str, Any] = {}
        self.passages: list[tuple[str, str]] = []
        self.queries: list[Any] = []
        self.vectors: np.ndarray | None = None

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg["op"]
        if op == "search":  # the hot path first
            engine = self.engines[msg["engine"]]
            query = self.queries[msg["q"]]
            flt = msg["filter"]
            started = time.perf_counter()
            ids = engine.search(query, flt, msg["k"])
            seconds = time.perf_counter() - started
            return {"s": seconds, "ids": [int(i) for i in ids]}
        if op == "load_text":
            data = json.loads(Path(msg["path"]).read_text())
            self.passages = [tuple(p) for p in data["passages"]]
            self.queries = data["queries"]
            self.vectors = None
            return {"passages": len(self.passages)}
        if op == "load_vectors":
            self.vectors = np.load(msg["vectors"], mmap_mode="r")
            self.queries = list(np.load(msg["queries"]))
            return {"vectors": len(self.vectors)}
        if op == "build":
            engine = self.factories[msg["engine"]]()
            data = self.passages if self.vectors is None else self.vectors
            started = time.perf_counter()
            engine.build(data)
            seconds = time.perf_counter() - started
            self.engines[msg["engine"]] = engine
            return {"seconds": seconds, "filter": engine.filter_mode}
        if op == "updates":
            engine = self.engines[msg["engine"]]
            if self.vectors is None:
                return keyword_updates(engine, self.passages)
            return vector_updates(engine, self.vectors)
        if op == "gc":  # off while timing, as timeit does: a collection is not a search
            gc.collect()
            (gc.enable if msg["enable"] else gc.disable)()
            return {}
        if op == "stats":
            return {"failed": getattr(self.engines[msg["engine"]], "failed", 0)}
        if op == "drop":
            engine = self.engines.pop(msg["engine"], None)
            if engine is not None and hasattr(engine, "close"):
                engine.close()
            return {}
        if op == "versions":
            return versions(msg["names"])
        raise ValueError(f"unknown op {op!r}")


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return (time.perf_counter() - started) * 1000, value


def keyword_updates(engine: Any, passages: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Insert 100 documents after the build, reopen from disk, delete them; check each step.

    The inserted documents carry :data:`MARKER`, so a search for it must return only them
    after the insert (and after reopening), and none of them after the delete.
    """
    start = len(passages)
    new_ids = list(range(start, start + UPDATE_DOCS))
    docs = [(MARKER + " " + passages[i][0], passages[i][1]) for i in range(UPDATE_DOCS)]
    insert_ms, insert_mode = _timed(lambda: engine.insert(new_ids, docs))
    found = set(engine.search(MARKER, "all", K))
    out: dict[str, Any] = {
        "insert_ms": round(insert_ms, 2),
        "insert_mode": insert_mode,
        "insert_ok": len(found) == K and found <= set(new_ids),
    }
    reopen_ms, persist_mode = _timed(engine.reopen)
    out["persist_mode"] = persist_mode
    if persist_mode != "none":
        out["reopen_ms"] = round(reopen_ms, 2)
        after = set(engine.search(MARKER, "all", K))
        out["persist_ok"] = len(after) == K and after <= set(new_ids)
    delete_ms, delete_mode = _timed(lambda: engine.delete(new_ids))
    gone = set(engine.search(MARKER, "all", K))
    out.update(
        delete_ms=round(delete_ms, 2),
        delete_mode=delete_mode,
        delete_ok=not gone & set(new_ids),
    )
    return out


def vector_updates(engine: Any, vectors: np.ndarray) -> dict[str, Any]:
    """Add 100 vectors after the build, then delete them; check that each step took.

    The new vectors are near copies of the first 100, so a search with one of those as the
    query must find its copy after the add and must not after the delete.
    """
    start = len(vectors)
    new_ids = np.arange(start, start + UPDATE_DOCS)
    rng = np.random.default_rng(7)
    new = np.asarray(vectors[:UPDATE_DOCS], np.float32) + rng.normal(
        0, 1e-3, (UPDATE_DOCS, vectors.shape[1])
    ).astype(np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    add_ms, add_mode = _timed(lambda: engine.add(new_ids, new))
    probes = [np.asarray(vectors[i], np.float32) for i in range(10)]
    found = sum(int(start + i in set(engine.search(q, "all", K))) for i, q in enumerate(probes))
    out: dict[str, Any] = {
        "add_ms": round(add_ms, 2),
        "add_mode": add_mode,
        "add_ok": found == len(probes),
    }
    try:
        delete_ms, delete_mode = _timed(lambda: engine.delete(new_ids))
    except NotImplementedError as exc:
        out.update(delete_mode=f"no ({exc})", delete_ok=False)
        return out
    left = sum(int(start + i in set(engine.search(q, "all", K))) for i, q in enumerate(probes))
    out.update(delete_ms=round(delete_ms, 2), delete_mode=delete_mode, delete_ok=left == 0)
    return out


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p95_ms": round(float(np.percentile(ms, 95)), 4),
        "samples": len(ms),
    }
