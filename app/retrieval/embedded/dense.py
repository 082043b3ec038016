"""In-memory dense search: exact for small or narrowly filtered sets, HNSW above that.

Every vector has a *position* (append-only). Positions of replaced or deleted
chunks stay in place as dead rows and are excluded by the same mask that
applies the caller's tenant and ACL, so the filter is always part of the query:

- when few positions pass the mask (or the HNSW graph is not built yet), the
  passing vectors are scored exactly;
- otherwise the mask becomes a faiss ``IDSelectorBitmap`` that the HNSW
  traversal consults at every step, and positions appended since the graph was
  last extended are scored exactly and merged.

New positions are added to the graph by :meth:`DenseIndex.seal`, which the
owner runs off the request path, so a write never waits for graph insertion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from app.retrieval.embedded.row_blocks import RowBlocks

__all__ = ["DenseIndex", "DenseRow"]

_NO_TENANT = -1
_THREADPOOLS = ThreadpoolController()


@dataclass(frozen=True, slots=True)
class DenseRow:
    """What dense search needs to know about one chunk."""

    rowid: int
    tenant_id: str
    acl: tuple[str, ...]
    vector: npt.NDArray[np.float32]


class DenseIndex:
    """Unit vectors with tenant/ACL columns, searchable with the filter inside the query.

    Not thread-safe on its own for writes: the owner serialises :meth:`add`,
    :meth:`remove` and :meth:`search`; :meth:`seal` may run in another thread
    and takes the internal graph lock.
    """

    def __init__(
        self,
        dim: int,
        *,
        ann_threshold: int = 20_000,
        exact_limit: int = 5_000,
        hnsw_m: int = 16,
        ef_construction: int = 48,
        ef_search: int = 64,
    ) -> None:
        """Create an empty index.

        Args:
            dim: Vector dimension.
            ann_threshold: Live vectors needed before an HNSW graph is worth building.
            exact_limit: Searches whose filter admits at most this many vectors are exact.
            hnsw_m: HNSW neighbours per node.
            ef_construction: HNSW build-time beam width.
            ef_search: HNSW query-time beam width (raised for large ``k``).
        """
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.exact_limit = exact_limit
        self._m = hnsw_m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._size = 0
        self._matrix = RowBlocks(dim)
        self._rowids = np.zeros(0, np.int64)
        self._tenants = np.zeros(0, np.int32)
        self._public = np.zeros(0, bool)
        self._alive = np.zeros(0, bool)
        self._tenant_codes: dict[str, int] = {}
        self._acl: dict[str, list[int]] = {}
        self._acl_arrays: dict[str, npt.NDArray[np.intp]] = {}
        self._position: dict[int, int] = {}
        # faiss's bundled stubs lack the HNSW classes' attributes, hence Any.
        self._graph: Any = None
        self._graph_lock = threading.Lock()
        # Searches waiting for the graph: seal() steps aside for them (see there).
        self._searchers = 0
        self._searchers_lock = threading.Lock()

    # -- size ---------------------------------------------------------------------

    @property
    def live(self) -> int:
        """Vectors that searches can return."""
        return len(self._position)

    @property
    def sealed(self) -> int:
        """Positions already in the HNSW graph."""
        graph = self._graph
        return 0 if graph is None else int(graph.ntotal)

    @property
    def pending(self) -> int:
        """Positions not yet in the graph, once a graph is worth having."""
        if self._graph is None and self.live < self.ann_threshold:
            return 0
        return self._size - self.sealed

    # -- writes -------------------------------------------------------------------

    def _grow(self, extra: int) -> None:
        need = self._size + extra
        self._matrix.reserve(need)  # the vectors never move; only the columns below do
        if need <= len(self._rowids):
            return
        capacity = max(need, 2 * len(self._rowids), 1024)
        for name in ("_rowids", "_tenants", "_public", "_alive"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: self._size] = old[: self._size]
            setattr(self, name, new)

    def add(self, rows: Sequence[DenseRow]) -> None:
        """Append rows; a rowid already present is replaced (its old position dies)."""
        self.remove([r.rowid for r in rows if r.rowid in self._position])
        self._grow(len(rows))
        for row in rows:
            pos = self._size
            self._matrix[pos] = row.vector
            self._rowids[pos] = row.rowid
            code = self._tenant_codes.setdefault(row.tenant_id, len(self._tenant_codes))
            self._tenants[pos] = code
            self._public[pos] = not row.acl
            self._alive[pos] = True
            for group in set(row.acl):
                self._acl.setdefault(group, []).append(pos)
                self._acl_arrays.pop(group, None)
            self._position[row.rowid] = pos
            self._size += 1

    def add_dead(self, count: int) -> None:
        """Append ``count`` placeholder positions (to line up with a saved graph)."""
        self._grow(count)
        self._tenants[self._size : self._size + count] = _NO_TENANT
        self._size += count

    def remove(self, rowids: Sequence[int]) -> None:
        """Mark rows dead; unknown rowids are ignored."""
        for rowid in rowids:
            pos = self._position.pop(rowid, None)
            if pos is not None:
                self._alive[pos] = False

    # -- graph --------------------------------------------------------------------

    def seal(self, batch: int = 1024, *, yield_s: float = 0.05) -> int:
        """Add up to ``batch`` pending positions to the HNSW graph; returns how many.

        A builder calling this in a loop would take the graph lock again the moment it
        released it, and a search waiting on the lock could starve for the whole build
        (half a second for 5,000 new vectors at 100k). So while searches wait, this waits
        for them first, for at most ``yield_s``.
        """
        deadline = time.monotonic() + yield_s
        while self._searchers and time.monotonic() < deadline:
            time.sleep(0.0002)
        with self._graph_lock:
            if self.pending == 0:
                return 0
            if self._graph is None:
                graph = faiss.IndexHNSWFlat(self.dim, self._m, faiss.METRIC_INNER_PRODUCT)
                graph.hnsw.efConstruction = self._ef_construction
                self._graph = graph
            start = int(self._graph.ntotal)
            stop = min(self._size, start + batch)
            self._graph.add(np.ascontiguousarray(self._matrix.rows(start, stop)))
            return stop - start

    def save_graph(self, path: Path) -> None:
        """Write the graph and the rowid of each of its positions next to ``path``."""
        with self._graph_lock:
            if self._graph is None:
                return
            count = int(self._graph.ntotal)
            faiss.write_index(self._graph, str(path))
            np.save(path.with_suffix(".rowids.npy"), self._rowids[:count])

    def load_graph(self, path: Path) -> npt.NDArray[np.int64] | None:
        """Read a saved graph; returns the rowids its positions must hold, or None."""
        rowids_path = path.with_suffix(".rowids.npy")
        if not path.exists() or not rowids_path.exists():
            return None
        try:
            graph: Any = faiss.read_index(str(path))
            rowids = np.load(rowids_path)
        except (RuntimeError, OSError, ValueError):
            return None  # a torn or foreign file: rebuild instead
        if (
            not isinstance(graph, faiss.IndexHNSWFlat)
            or graph.d != self.dim
            or int(graph.ntotal) != len(rowids)
        ):
            return None
        graph.hnsw.efConstruction = self._ef_construction
        with self._graph_lock:
            self._graph = graph
        return np.asarray(rowids, np.int64)

    # -- search -------------------------------------------------------------------

    def _mask(self, tenant_id: str, groups: frozenset[str]) -> npt.NDArray[np.bool_] | None:
        code = self._tenant_codes.get(tenant_id)
        if code is None:
            return None
        n = self._size
        mask: npt.NDArray[np.bool_] = np.equal(self._tenants[:n], code)
        visible = self._public[:n].copy()
        for group in groups:
            positions = self._acl_arrays.get(group)
            if positions is None:
                listed = self._acl.get(group)
                if not listed:
                    continue
                positions = self._acl_arrays[group] = np.asarray(listed, np.intp)
            visible[positions] = True
        mask &= visible
        mask &= self._alive[:n]
        return mask

    def _exact(
        self, query: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], start: int, k: int
    ) -> list[tuple[int, float]]:
        """Score the positions ``start + i`` where ``mask[i]``; return the best ``k``."""
        positions = np.flatnonzero(mask)
        if positions.size == 0:
            return []
        # One BLAS thread: a matrix-vector product this size gains nothing from more,
        # and spinning threads stall badly when other requests hold the cores.
        with _THREADPOOLS.limit(limits=1, user_api="blas"):
            if positions.size * 8 >= mask.size:
                # Scoring a contiguous block beats gathering scattered rows by ~10x.
                scores = self._matrix.dot(start, start + mask.size, query)[positions]
            else:
                scores = self._matrix.take(positions + start) @ query
        top = np.argpartition(-scores, k - 1)[:k] if scores.size > k else np.arange(scores.size)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(positions[i]) + start, float(scores[i])) for i in top]

    def search(
        self, query: npt.NDArray[np.float32], tenant_id: str, groups: frozenset[str], k: int
    ) -> list[tuple[int, float]]:
        """Return ``(rowid, cosine)`` of the ``k`` nearest rows visible to the caller."""
        if k <= 0:
            return []
        mask = self._mask(tenant_id, groups)
        if mask is None:
            return []
        query = np.ascontiguousarray(query, np.float32).reshape(-1)
        sealed = self.sealed
        if sealed == 0 or int(np.count_nonzero(mask)) <= self.exact_limit:
            found = self._exact(query, mask, 0, k)
        else:
            # Positions sealed after ``sealed`` was read fall outside the bitmap, so
            # the graph skips them and the exact pass below covers them.
            with self._searchers_lock:
                self._searchers += 1
            try:
                self._graph_lock.acquire()
            finally:
                with self._searchers_lock:
                    self._searchers -= 1
            try:
                found = self._graph_search(query, mask, sealed, k)
            finally:
                self._graph_lock.release()
            found += self._exact(query, mask[sealed:], sealed, k)
            found.sort(key=lambda item: -item[1])
            found = found[:k]
        return [(int(self._rowids[pos]), score) for pos, score in found]

    def _graph_search(
        self,
        query: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
        sealed: int,
        k: int,
    ) -> list[tuple[int, float]]:
        assert self._graph is not None
        bitmap = np.packbits(mask[:sealed], bitorder="little")
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        # A narrow filter hides most of the graph; widen the beam so k survive.
        share = max(float(np.count_nonzero(mask[:sealed])) / sealed, 1e-3)
        ef = int(min(max(self._ef_search, 2 * k) / min(1.0, share * 4), 4096))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)  # type: ignore[attr-defined]
        scores, positions = self._graph.search(query.reshape(1, -1), k, params=params)
        return [(int(p), float(s)) for p, s in zip(positions[0], scores[0], strict=True) if p >= 0]
