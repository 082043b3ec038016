"""Dense search: exact and HNSW paths agree, filters hold on both, dead rows never return."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.embedded.dense import DenseIndex, DenseRow

DIM = 32


def _rows(n: int, *, seed: int = 0) -> list[DenseRow]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        DenseRow(
            rowid=i + 1,
            tenant_id="t1" if i % 2 else "t2",
            acl=() if i % 5 else ("finance",),
            vector=vectors[i],
        )
        for i in range(n)
    ]


def _visible(row: DenseRow, tenant: str, groups: frozenset[str]) -> bool:
    return row.tenant_id == tenant and (not row.acl or bool(groups & set(row.acl)))


def _brute(rows: list[DenseRow], query: np.ndarray, tenant: str, groups: frozenset[str], k: int):
    allowed = [r for r in rows if _visible(r, tenant, groups)]
    allowed.sort(key=lambda r: -float(r.vector @ query))
    return [r.rowid for r in allowed[:k]]


@pytest.fixture(scope="module")
def rows() -> list[DenseRow]:
    return _rows(3000)


def _graph_index(rows: list[DenseRow]) -> DenseIndex:
    index = DenseIndex(DIM, ann_threshold=100, exact_limit=0, ef_search=200)
    index.add(rows)
    while index.seal(1000):
        pass
    return index


@pytest.mark.parametrize("groups", [frozenset(), frozenset({"finance"})], ids=["public", "finance"])
def test_graph_search_matches_exact_search_and_respects_filters(
    rows: list[DenseRow], groups: frozenset[str]
) -> None:
    exact = DenseIndex(DIM)
    exact.add(rows)
    graph = _graph_index(rows)
    assert exact.sealed == 0 and graph.sealed == len(rows)
    by_id = {r.rowid: r for r in rows}
    recall = []
    for q in _rows(20, seed=1):
        want = _brute(rows, q.vector, "t1", groups, 10)
        got_exact = [r for r, _ in exact.search(q.vector, "t1", groups, 10)]
        got_graph = [r for r, _ in graph.search(q.vector, "t1", groups, 10)]
        assert got_exact == want
        assert all(_visible(by_id[r], "t1", groups) for r in got_graph)
        recall.append(len(set(got_graph) & set(want)) / len(want))
    assert np.mean(recall) >= 0.9


def test_unsealed_rows_are_found_next_to_the_graph(rows: list[DenseRow]) -> None:
    index = _graph_index(rows[:2000])
    index.add(rows[2000:])
    assert index.sealed == 2000 and index.pending == 1000
    late = rows[2500]
    hits = index.search(late.vector, late.tenant_id, frozenset({"finance"}), 1)
    assert hits[0][0] == late.rowid


def test_removed_and_replaced_rows_never_return(rows: list[DenseRow]) -> None:
    for index in (DenseIndex(DIM), _graph_index(rows)):
        if index.sealed == 0:
            index.add(rows)
        target = rows[7]
        index.remove([target.rowid])
        hits = index.search(target.vector, target.tenant_id, frozenset({"finance"}), 5)
        assert target.rowid not in [r for r, _ in hits]
        moved = DenseRow(rows[9].rowid, rows[9].tenant_id, (), target.vector)
        index.add([moved])  # same rowid, new vector: the old position dies
        hits = index.search(target.vector, moved.tenant_id, frozenset(), 3)
        assert [r for r, _ in hits].count(moved.rowid) == 1
        assert hits[0][0] == moved.rowid


def test_unknown_tenant_and_empty_index_find_nothing(rows: list[DenseRow]) -> None:
    assert DenseIndex(DIM).search(rows[0].vector, "t1", frozenset(), 5) == []
    index = DenseIndex(DIM)
    index.add(rows[:10])
    assert index.search(rows[0].vector, "nobody", frozenset(), 5) == []


def test_graph_snapshot_round_trip(rows: list[DenseRow], tmp_path: Path) -> None:
    index = _graph_index(rows)
    index.save_graph(tmp_path / "g.hnsw")
    fresh = DenseIndex(DIM, ann_threshold=100, exact_limit=0, ef_search=200)
    saved = fresh.load_graph(tmp_path / "g.hnsw")
    assert saved is not None and saved.tolist() == [r.rowid for r in rows]
    fresh.add(rows)
    assert fresh.sealed == len(rows) and fresh.pending == 0
    q = rows[42].vector
    assert fresh.search(q, "t1", frozenset(), 5) == index.search(q, "t1", frozenset(), 5)


def test_torn_or_foreign_snapshot_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "g.hnsw").write_bytes(b"not a faiss index")
    np.save(tmp_path / "g.rowids.npy", np.arange(3))
    assert DenseIndex(DIM).load_graph(tmp_path / "g.hnsw") is None
    assert DenseIndex(DIM).load_graph(tmp_path / "missing.hnsw") is None


def test_vectors_stored_across_many_blocks_search_like_one_matrix(rows: list[DenseRow]) -> None:
    from app.retrieval.embedded.row_blocks import RowBlocks

    index = DenseIndex(DIM, ann_threshold=100, exact_limit=0)
    index._matrix = RowBlocks(DIM, block_rows=97)  # 3000 rows over 31 blocks
    for start in range(0, len(rows), 700):  # grown in steps, as writes arrive
        index.add(rows[start : start + 700])
    while index.seal(256):  # the graph is fed across block boundaries
        pass
    tail = [DenseRow(r.rowid + 10_000, r.tenant_id, r.acl, r.vector) for r in _rows(150, seed=3)]
    index.add(tail)  # unsealed, scored exactly, spanning two blocks
    query = tail[1].vector
    groups = frozenset({"finance"})
    everything = rows + tail
    want = _brute(everything, query, "t1", groups, 10)
    got = [rowid for rowid, _ in index.search(query, "t1", groups, 10)]
    assert len(set(got) & set(want)) >= 9
    index.exact_limit = 10**9  # exact over every position: gathered across blocks
    assert [rowid for rowid, _ in index.search(query, "t1", groups, 10)] == want


class _SlowGraph:
    """The HNSW graph, with each insertion taking 20 ms (under the graph lock)."""

    def __init__(self, graph: object) -> None:
        self.graph = graph

    def __getattr__(self, name: str) -> object:
        return getattr(self.graph, name)

    def add(self, vectors: np.ndarray) -> None:
        time.sleep(0.02)
        self.graph.add(vectors)  # type: ignore[attr-defined]


def test_a_search_waits_for_one_graph_step_at_most() -> None:
    index = DenseIndex(DIM, ann_threshold=100, exact_limit=0)
    index.add(_rows(300))
    assert index.seal(200) == 200
    index._graph = _SlowGraph(index._graph)
    steps: list[float] = []

    def build() -> None:  # the background builder: one position per step
        while index.seal(1):
            steps.append(time.monotonic())

    builder = threading.Thread(target=build)
    builder.start()
    while len(steps) < 3:
        time.sleep(0.001)
    began = time.monotonic()
    index.search(_rows(1)[0].vector, "t1", frozenset(), 3)
    ended = time.monotonic()
    builder.join(10)
    during = sum(began < t < ended for t in steps)
    # The step under way, then the search. With yield_s=0 the builder takes the lock
    # back at once, and the search waits for several steps (often all of them).
    assert during <= 1
