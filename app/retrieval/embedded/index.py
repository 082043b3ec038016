"""Embedded, persistent indexes: SQLite for chunks, tantivy for BM25, in-memory dense search.

SQLite is the source of truth: replacing a document's chunks and its record is
one SQLite transaction, so a reader never sees half of a change. Two derived
indexes follow SQLite's change log (:mod:`app.retrieval.embedded.changelog`):

- BM25 runs on a tantivy index next to the database file, with tenant and ACL
  as terms inside the query. It catches up with the log in one commit before a
  search that finds it behind, or when :meth:`EmbeddedIndex.flush` is called.
- Dense search runs on :class:`~app.retrieval.embedded.dense.DenseIndex` in this
  process's memory: exact below a size, HNSW above it, the filter a mask inside
  the query either way. It loads once, then applies only new log entries. The
  HNSW graph grows in a background thread and is saved next to the database.

Several processes may share one store: writes serialise on SQLite's write
lock, and each reader catches up with what the others committed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from app.retrieval.embedded import changelog
from app.retrieval.embedded.dense import DenseIndex
from app.retrieval.embedded.dense_follow import DenseFollower
from app.retrieval.embedded.keyword import TantivyKeywords
from app.retrieval.embedded.sql import (
    COLUMNS,
    COPY_FROM_V1,
    MIGRATE_FROM_V1,
    SCHEMA,
    acl_clause,
    row_to_chunk,
)
from app.retrieval.protocols import Vector
from app.retrieval.types import Chunk, DocumentRecord, Hit, SearchFilter

__all__ = ["EmbeddedIndex"]

_CHUNK_CACHE = 65_536
"""Chunks kept in memory for building hits (a few hundred bytes each)."""

_DOC_COLUMNS = "tenant_id, doc_id, source, content_hash, embed_model, index_version, chunk_ids"


def _record(row: sqlite3.Row) -> DocumentRecord:
    return DocumentRecord(
        tenant_id=row["tenant_id"],
        doc_id=row["doc_id"],
        source=row["source"],
        content_hash=row["content_hash"],
        embed_model=row["embed_model"],
        index_version=row["index_version"],
        chunk_ids=tuple(json.loads(row["chunk_ids"])),
    )


class EmbeddedIndex:
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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run writes atomically across the vector and keyword indexes."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert(self, chunks: Sequence[Chunk], vectors: Vector | None) -> None:
        if vectors is not None and vectors.shape != (len(chunks), self._dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self._dim})")
        ids = [(c.chunk_id,) for c in chunks]
        if vectors is None:
            # A keyword-only upsert keeps the vector the chunk already has.
            blobs = [
                (row[0] if row else None)
                for row in (
                    self._db.execute("SELECT vector FROM chunks WHERE chunk_id = ?", i).fetchone()
                    for i in ids
                )
            ]
        else:
            matrix = np.ascontiguousarray(vectors, np.float32)
            blobs = [matrix[i].tobytes() for i in range(len(chunks))]
        self._db.executemany("DELETE FROM chunks WHERE chunk_id = ?", ids)
        self._db.executemany(
            "INSERT INTO chunks(chunk_id, doc_id, tenant_id, source, text, span_start, "
            "span_end, content_hash, acl, heading, page, vector) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    c.chunk_id,
                    c.doc_id,
                    c.tenant_id,
                    c.source,
                    c.text,
                    c.span[0],
                    c.span[1],
                    c.content_hash,
                    json.dumps(sorted(c.acl)),
                    c.heading,
                    c.page,
                    blob,
                )
                for c, blob in zip(chunks, blobs, strict=True)
            ],
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO chunk_acl(grp, chunk_rowid) "
            "SELECT ?, rowid FROM chunks WHERE chunk_id = ?",
            [(g, c.chunk_id) for c in chunks for g in set(c.acl)],
        )

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector | None = None) -> None:
        """Insert or replace chunks, with their vectors when given."""
        with self.transaction():
            self._insert(chunks, vectors)

    def _delete(self, tenant_id: str, doc_id: str) -> int:
        self._db.execute(
            "DELETE FROM documents WHERE tenant_id = ? AND doc_id = ?", (tenant_id, doc_id)
        )
        cur = self._db.execute(
            "DELETE FROM chunks WHERE tenant_id = ? AND doc_id = ?", (tenant_id, doc_id)
        )
        return cur.rowcount

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document from both indexes."""
        with self.transaction():
            return self._delete(tenant_id, doc_id)

    def replace_document(
        self, record: DocumentRecord, chunks: Sequence[Chunk], vectors: Vector
    ) -> None:
        """Swap a document's chunks in both indexes, and its record, in one transaction."""
        with self.transaction():
            self._delete(record.tenant_id, record.doc_id)
            self._insert(chunks, vectors)
            self._put_record(record, [c.chunk_id for c in chunks])

    def _put_record(self, record: DocumentRecord, chunk_ids: Sequence[str]) -> None:
        self._db.execute(
            "INSERT INTO documents(tenant_id, doc_id, source, content_hash, embed_model, "
            "index_version, chunk_ids) VALUES (?,?,?,?,?,?,?)",
            (
                record.tenant_id,
                record.doc_id,
                record.source,
                record.content_hash,
                record.embed_model,
                record.index_version,
                json.dumps(list(chunk_ids)),
            ),
        )

    def put_record(self, record: DocumentRecord, chunk_ids: Sequence[str]) -> None:
        """Record what is indexed for a document whose chunks live in other engines."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM documents WHERE tenant_id = ? AND doc_id = ?",
                (record.tenant_id, record.doc_id),
            )
            self._put_record(record, chunk_ids)

    def forget_record(self, tenant_id: str, doc_id: str) -> None:
        """Drop a document's record (its chunks live in other engines)."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM documents WHERE tenant_id = ? AND doc_id = ?", (tenant_id, doc_id)
            )

    def document(self, tenant_id: str, doc_id: str) -> DocumentRecord | None:
        """Return what is indexed for a document, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE tenant_id = ? AND doc_id = ?",
                (tenant_id, doc_id),
            ).fetchone()
        return None if row is None else _record(row)

    def documents(self, tenant_id: str) -> list[DocumentRecord]:
        """Return every document indexed for a tenant."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE tenant_id = ? ORDER BY source",
                (tenant_id,),
            ).fetchall()
        return [_record(r) for r in rows]

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
