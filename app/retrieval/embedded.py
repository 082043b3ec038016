"""Embedded, persistent indexes: SQLite for chunks, tantivy for BM25, in-memory dense search.

SQLite is the source of truth: replacing a document's chunks and its record is
one SQLite transaction, so a reader never sees half of a change. Two derived
indexes follow SQLite's change log (:mod:`app.retrieval.changelog`):

- BM25 runs on a tantivy index next to the database file, with tenant and ACL
  as terms inside the query. It catches up with the log in one commit before a
  search that finds it behind, or when :meth:`EmbeddedIndex.flush` is called.
- Dense search runs on :class:`~app.retrieval.dense.DenseIndex` in this
  process's memory: exact below a size, HNSW above it, the filter a mask inside
  the query either way. It loads once, then applies only new log entries. The
  HNSW graph grows in a background thread and is saved next to the database.

Several processes may share one store: writes serialise on SQLite's write
lock, and each reader catches up with what the others committed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from app.retrieval import changelog
from app.retrieval.dense import DenseIndex
from app.retrieval.dense_follow import DenseFollower
from app.retrieval.embedded_writes import EmbeddedWrites
from app.retrieval.keyword import TantivyKeywords
from app.retrieval.protocols import Vector
from app.retrieval.sqlite_sql import (
    COLUMNS,
    COPY_FROM_V1,
    MIGRATE_FROM_V1,
    SCHEMA,
    acl_clause,
    row_to_chunk,
)
from app.retrieval.types import Chunk, Hit, SearchFilter

__all__ = ["EmbeddedIndex"]

_CHUNK_CACHE = 65_536
"""Chunks kept in memory for building hits (a few hundred bytes each)."""


class EmbeddedIndex(EmbeddedWrites):
    """A :class:`VectorIndex` and :class:`KeywordIndex` over one SQLite database."""

    def __init__(
        self,
        path: Path,
        dim: int,
        *,
        ann_threshold: int = 20_000,
        exact_limit: int = 5_000,
    ) -> None:
        """Open (and create) the index at ``path`` for vectors of ``dim`` dimensions.

        Args:
            path: The SQLite file; the keyword index and the HNSW graph live beside it.
            dim: Vector dimension.
            ann_threshold: Chunks needed before dense search builds an HNSW graph.
            exact_limit: Dense searches whose filter admits at most this many chunks
                are exact.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self._dim = dim
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._migrate()
        self._keywords = TantivyKeywords(path.with_suffix(".tantivy"))
        if self._keywords.created:
            self._db.execute("UPDATE meta SET value = -1 WHERE key = 'keyword_seq'")
        self._keyword_seen = -2
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._dense = DenseFollower(
            path.with_suffix(".hnsw"),
            lambda: DenseIndex(dim, ann_threshold=ann_threshold, exact_limit=exact_limit),
        )

    def _migrate(self) -> None:
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "chunks" in tables and "changes" not in tables:
            # One script, one transaction: executescript() would commit between scripts.
            script = f"BEGIN IMMEDIATE;{MIGRATE_FROM_V1}{SCHEMA}{COPY_FROM_V1}COMMIT;"
            try:
                self._db.executescript(script)
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self._db.executescript(SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(documents)")}
        if "chunk_ids" not in columns:  # indexes written before records kept chunk ids
            self._db.execute("DROP TABLE documents")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Stop the graph builder, save the graph, close the database."""
        self._dense.stop()
        with self._lock:
            self._dense.save()
            self._db.close()

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks, optionally only those visible to ``flt``, stopping at ``limit``."""
        where, params = "1", list[object]()
        if flt is not None:
            clause, groups = acl_clause(flt)
            where, params = f"c.tenant_id = ? AND {clause}", [flt.tenant_id, *groups]
        sql = f"SELECT count(*) FROM chunks c WHERE {where}"
        if limit is not None:  # the ACL check runs per row: stop at the first ``limit``
            sql = f"SELECT count(*) FROM (SELECT 1 FROM chunks c WHERE {where} LIMIT ?)"
            params.append(limit)
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return int(row[0])

    def flush(self) -> None:
        """Bring the keyword index up to date now rather than at the next search."""
        with self._lock:
            self._sync_keywords()

    def _sync_keywords(self) -> None:
        state = changelog.log_state(self._db)
        if state.keyword_seq < max(state.head, 0):
            self._catch_up_keywords()
            state = changelog.log_state(self._db)
        if state.keyword_seq != self._keyword_seen:
            self._keywords.reload()  # another process may have committed
            self._keyword_seen = state.keyword_seq

    def _catch_up_keywords(self) -> None:
        with self.transaction():  # one catcher-up at a time, across processes
            state = changelog.log_state(self._db)
            if state.keyword_seq >= max(state.head, 0):
                return  # someone else caught up while we waited for the lock
            if state.keyword_seq < max(state.pruned_through, 0) or state.keyword_seq < 0:
                self._keywords.apply(None, changelog.keyword_rows(self._db, None))
            else:
                ids = changelog.touched(self._db, state.keyword_seq, state.head)
                self._keywords.apply(ids, changelog.keyword_rows(self._db, ids))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'keyword_seq'", (state.head,))
            changelog.prune(self._db, state.head)

    def keyword_search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """BM25 on tantivy, filtered by tenant and ACL inside the query."""
        with self._lock:
            self._sync_keywords()
            found = self._keywords.search(query, flt.tenant_id, flt.groups, k)
            return self._hits(found)

    def _hits(self, found: list[tuple[int, float]]) -> list[Hit]:
        # A rowid's content never changes (an update gets a new rowid), so cached
        # chunks never go stale; hits are read from SQLite only on a miss.
        missing = [r for r, _ in found if r not in self._chunks]
        if missing:
            marks = ",".join("?" * len(missing))
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM chunks c WHERE c.rowid IN ({marks})", missing
            ).fetchall()
            for row in rows:
                self._chunks[int(row["rowid"])] = row_to_chunk(row)
            while len(self._chunks) > _CHUNK_CACHE:
                self._chunks.popitem(last=False)
        # A rowid can be missing only if its chunk was deleted after the index
        # read it; the result must not resurrect it.
        return [Hit(self._chunks[r], score) for r, score in found if r in self._chunks]

    def build_graph(self) -> int:
        """Bring dense search up to date and finish its HNSW graph now.

        Returns:
            How many positions the graph holds (0 below the size that needs one).
        """
        with self._lock:
            dense = self._dense.sync(self._db)
        while dense.seal(4096):
            pass
        return dense.sealed

    def vector_search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """Nearest chunks by cosine among those the caller may see."""
        with self._lock:
            dense = self._dense.sync(self._db)
            found = dense.search(np.asarray(vector, np.float32), flt.tenant_id, flt.groups, k)
            return self._hits(found)
