"""Keeps one process's :class:`DenseIndex` in step with the chunk change log.

The first search loads every vector (and the saved HNSW graph, when its
positions still line up); later searches apply only log entries written since.
A background thread extends the graph and snapshots it now and then, so the
next process starts with most of the graph built.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from app.retrieval.embedded import changelog
from app.retrieval.embedded.dense import DenseIndex

__all__ = ["DenseFollower"]

_SAVE_EVERY = 100_000
"""Sealed positions between snapshots of the HNSW graph."""


class DenseFollower:
    """The dense index of one process, following a store's change log."""

    def __init__(self, graph_path: Path, factory: Callable[[], DenseIndex]) -> None:
        """Follow a store whose HNSW graph snapshot lives at ``graph_path``."""
        self._graph_path = graph_path
        self._factory = factory
        self._dense: DenseIndex | None = None
        self._seq = 0
        self._saved = 0
        self._sealer: threading.Thread | None = None
        self._stopping = threading.Event()

    def sync(self, db: sqlite3.Connection) -> DenseIndex:
        """Apply what the log holds beyond this process's copy; the caller holds the db lock."""
        db.execute("BEGIN")  # one snapshot for the log state and the rows
        try:
            state = changelog.log_state(db)
            dense = self._dense
            if dense is None or self._seq < state.pruned_through:
                dense = self._load(db)
            elif self._seq < state.head:
                ids = changelog.touched(db, self._seq, state.head)
                rows = list(changelog.dense_rows(db, ids))
                dense.remove(ids)
                dense.add(rows)
            self._seq = state.head
        finally:
            db.execute("COMMIT")
        self._dense = dense
        sealer = self._sealer
        if dense.pending and not self._stopping.is_set() and not (sealer and sealer.is_alive()):
            self._sealer = threading.Thread(
                target=self._seal, args=(dense,), name="ragent-hnsw", daemon=True
            )
            self._sealer.start()
        return dense

    def _load(self, db: sqlite3.Connection) -> DenseIndex:
        dense = self._factory()
        saved = dense.load_graph(self._graph_path)
        rows = {r.rowid: r for r in changelog.dense_rows(db, None)}
        if saved is not None:
            # Graph position i must hold the vector it was built with: rowids are
            # never reused, so a missing one is a deleted chunk, kept as a dead slot.
            for rowid in saved.tolist():
                row = rows.pop(rowid, None)
                if row is None:
                    dense.add_dead(1)
                else:
                    dense.add([row])
            self._saved = len(saved)
        dense.add(list(rows.values()))
        return dense

    def _seal(self, dense: DenseIndex) -> None:
        while not self._stopping.is_set() and dense is self._dense:
            if dense.seal(64) == 0:  # small steps: a search waits for one at most
                return
            if dense.sealed - self._saved >= _SAVE_EVERY:
                dense.save_graph(self._graph_path)
                self._saved = dense.sealed

    def stop(self) -> None:
        """Stop extending the graph and wait for the builder thread."""
        self._stopping.set()
        sealer = self._sealer
        if sealer is not None:
            sealer.join()

    def save(self) -> None:
        """Snapshot the graph if it grew since the last snapshot."""
        dense = self._dense
        if dense is not None and dense.sealed > self._saved:
            dense.save_graph(self._graph_path)
            self._saved = dense.sealed
