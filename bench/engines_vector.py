"""Vector candidates for bench/engines.py, one adapter each with the same four methods.

``build(vectors)`` (ids are positions), ``search(query, filter, k) -> ids``,
``add(ids, vectors) -> mode`` and ``delete(ids) -> mode`` (NotImplementedError when the
engine cannot delete). Filter "all" is no filter (for ragent: a tenant+ACL filter that admits
everything, since ragent has no unfiltered search); "10%" admits ids with ``id % 10 == 3``.
Raw engines get that filter as a ready-made structure (a bitmap, a callable, a mask), built
once outside the timing; ragent builds its mask from tenant and ACL columns per query, inside.

The HNSW engines share one configuration: M (connectivity) 16, efConstruction 48,
efSearch 64, inner product; every engine runs on one thread. Libraries are imported by the
adapters, so this module loads in either venv.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from engines_common import FILTERS, GROUPS, NARROW_GROUP, groups_of, mask_of

M, EF_CONSTRUCTION, EF_SEARCH = 16, 48, 64
USEARCH_OVERSAMPLE = 20
"""usearch's Python search takes no filter: it fetches k x this many, then filters."""


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k - 1)[:k] if scores.size > k else np.arange(scores.size)
    return top[np.argsort(-scores[top], kind="stable")]


class NumpyExact:
    """A float32 matrix times the query (one BLAS thread), then a partial sort."""

    filter_mode = "scores only the admitted rows (gather)"

    def build(self, vectors: np.ndarray) -> None:
        self.matrix = np.array(vectors, np.float32)
        self.alive = np.ones(len(self.matrix), bool)
        self.rows = {f: np.flatnonzero(mask_of(len(self.matrix), f)) for f in FILTERS}

    def search(self, query: np.ndarray, flt: str, k: int) -> list[int]:
        if flt == "all":
            scores = self.matrix @ query
            if not self.alive.all():
                scores[~self.alive] = -np.inf
            return _top(scores, k).tolist()
        rows = self.rows[flt]
        return rows[_top(self.matrix[rows] @ query, k)].tolist()

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> str:
        self.matrix = np.concatenate([self.matrix, vectors])
        self.alive = np.concatenate([self.alive, np.ones(len(vectors), bool)])
        return "append (copies the matrix)"

    def delete(self, ids: Sequence[int]) -> str:
        self.alive[list(ids)] = False
        return "tombstone mask"


class FaissFlat:
    """faiss IndexFlatIP: exact, with an IDSelectorBitmap for the filter."""

    filter_mode = "IDSelectorBitmap (exact)"

    def build(self, vectors: np.ndarray) -> None:
        import faiss

        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.ascontiguousarray(vectors, np.float32))
        self.params = {"all": None, "10%": faiss.SearchParameters(sel=_bitmap(len(vectors)))}

    def search(self, query: np.ndarray, flt: str, k: int) -> list[int]:
        _, ids = self.index.search(query.reshape(1, -1), k, params=self.params[flt])
        return [int(i) for i in ids[0] if i >= 0]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> str:
        self.index.add(vectors)  # ids are the next positions
        return "append"

    def delete(self, ids: Sequence[int]) -> str:
        import faiss

        self.index.remove_ids(faiss.IDSelectorArray(np.asarray(ids, np.int64)))
        return "remove_ids (compacts; renumbers later ids)"


_BITMAPS: list[np.ndarray] = []  # faiss keeps a raw pointer: the arrays must outlive it


def _bitmap(size: int) -> Any:
    import faiss

    bits = np.packbits(mask_of(size, "10%"), bitorder="little")
    _BITMAPS.append(bits)
    return faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))


class FaissHnsw:
    """faiss IndexHNSWFlat, the filter as an IDSelectorBitmap consulted during traversal."""

    filter_mode = "IDSelectorBitmap inside HNSW traversal"

    def build(self, vectors: np.ndarray) -> None:
        import faiss

        self.index = faiss.IndexHNSWFlat(vectors.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(np.ascontiguousarray(vectors, np.float32))
        self.params = {
            "all": faiss.SearchParametersHNSW(efSearch=EF_SEARCH),
            "10%": faiss.SearchParametersHNSW(sel=_bitmap(len(vectors)), efSearch=EF_SEARCH),
        }

    def search(self, query: np.ndarray, flt: str, k: int) -> list[int]:
        _, ids = self.index.search(query.reshape(1, -1), k, params=self.params[flt])
        return [int(i) for i in ids[0] if i >= 0]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> str:
        self.index.add(vectors)
        return "graph insert"

    def delete(self, ids: Sequence[int]) -> str:
        import faiss

        try:
            self.index.remove_ids(faiss.IDSelectorArray(np.asarray(ids, np.int64)))
        except RuntimeError:
            raise NotImplementedError("remove_ids unsupported; needs a mask") from None
        return "remove_ids"


class RagentDense:
    """ragent's app.retrieval.embedded.dense.DenseIndex: exact below 20k, faiss HNSW above."""

    filter_mode = "tenant+ACL mask per query; exact or HNSW bitmap"

    def _rows(self, ids: Sequence[int], vectors: np.ndarray) -> list:
        from app.retrieval.embedded.dense import DenseRow

        return [
            DenseRow(int(i), "t", (f"g{int(i) % GROUPS}",), v)
            for i, v in zip(ids, vectors, strict=True)
        ]

    def build(self, vectors: np.ndarray) -> None:
        from app.retrieval.embedded.dense import DenseIndex

        self.groups = {f: frozenset(f"g{g}" for g in groups_of(f)) for f in FILTERS}
        self.index = DenseIndex(
            vectors.shape[1], hnsw_m=M, ef_construction=EF_CONSTRUCTION, ef_search=EF_SEARCH
        )
        self.add(range(len(vectors)), np.asarray(vectors, np.float32))

    def search(self, query: np.ndarray, flt: str, k: int) -> list[int]:
        return [rowid for rowid, _ in self.index.search(query, "t", self.groups[flt], k)]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> str:
        self.index.add(self._rows(ids, vectors))
        while self.index.seal(batch=4096):  # the owner does this off the request path
            pass
        return "append (+ graph insert above 20k)"

    def delete(self, ids: Sequence[int]) -> str:
        self.index.remove([int(i) for i in ids])
        return "tombstone mask"


class Hnswlib:
    """hnswlib, the filter as a Python callable asked about each candidate."""

    filter_mode = "filter callable (Python, per candidate)"

    def build(self, vectors: np.ndarray) -> None:
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        self.index.init_index(len(vectors) + 1000, ef_construction=EF_CONSTRUCTION, M=M)
        self.index.set_ef(EF_SEARCH)
        self.index.add_items(np.asarray(vectors, np.float32), np.arange(len(vectors)), 1)
        self.filters = {"all": None, "10%": lambda label: label % GROUPS == NARROW_GROUP}
        self.failed = 0

    def search(self, query: np.ndarray, flt: str, k: int) -> list[int]:
        try:
            labels, _ = self.index.knn_query(query, k, 1, self.filters[flt])
        except RuntimeError:  # fewer than k found within ef: hnswlib returns nothing
            self.failed += 1
            return []
        return [int(i) for i in labels[0]]

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> str:
        self.index.add_items(vectors, np.asarray(ids), 1)
        return "graph insert"

    def delete(self, ids: Sequence[int]) -> str:
        for i in ids:
            self.index.mark_deleted(int(i))
        return "mark_deleted (tombstone)"


class Usearch:
    """usearch; its Python search has no filter, so the 10 % filter is applied after it."""

    filter_mode = f"no filter in Python: post-filter of top k x {USEARCH_OVERSAMPLE}"

    def build(self, vectors: np.ndarray) -> None:
        from usearch.index import Index

        self.index = Index(
            ndim=vectors.shape[1],
            metric="ip",
            dtype="f32",
            connectivity=M,
            expansion_add=EF_CONSTRUCTION,
            expansion_search=EF_SEARCH,
        )
        self.index.add(np.arange(len(vectors)), np.asarray(vectors, np.float32), threads=1)

    def search(self, query: np.ndarray, flt: str, k: int) -> list[int]:
        if flt == "all":
            return self.index.search(query, k, threads=1).keys.tolist()
        keys = self.index.search(query, k * USEARCH_OVERSAMPLE, threads=1).keys
        return keys[keys % GROUPS == NARROW_GROUP][:k].tolist()

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> str:
        self.index.add(np.asarray(ids), vectors, threads=1)
        return "graph insert"

    def delete(self, ids: Sequence[int]) -> str:
        self.index.remove(np.asarray(ids))
        return "remove"


RAGENT_SIDE = {
    "ragent dense": RagentDense,
    "numpy exact": NumpyExact,
    "faiss flat": FaissFlat,
    "faiss hnsw": FaissHnsw,
}
"""Run in the project's venv."""
PEER_SIDE = {"hnswlib": Hnswlib, "usearch": Usearch}
"""Run in the benchmark's own venv."""
