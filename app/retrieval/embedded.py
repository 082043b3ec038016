"""Embedded, persistent indexes in one SQLite file: FTS5 BM25 plus exact dense search.

Both indexes live in the same database, so replacing a document's chunks in
both is one transaction: a reader never sees half of a change. Dense search
keeps a unit-vector matrix in memory, reloaded only when another writer has
committed (tracked by a generation counter), and applies the tenant and ACL
filter as a mask before scoring, inside the query.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.retrieval.protocols import Vector
from app.retrieval.sqlite_sql import COLUMNS, SCHEMA, acl_clause, fts_query, row_to_chunk
from app.retrieval.types import Chunk, DocumentRecord, Hit, SearchFilter

__all__ = ["EmbeddedIndex", "EmbeddedKeywordIndex", "EmbeddedVectorIndex", "fts_query"]


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


@dataclass
class _DenseCache:
    generation: int
    rowids: np.ndarray
    tenants: np.ndarray
    public: np.ndarray
    matrix: np.ndarray


class EmbeddedIndex:
    """A :class:`VectorIndex` and :class:`KeywordIndex` over one SQLite database."""

    def __init__(self, path: Path, dim: int) -> None:
        """Open (and create) the index at ``path`` for vectors of ``dim`` dimensions."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._dim = dim
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        self._migrate()
        self._dense: _DenseCache | None = None

    def _migrate(self) -> None:
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(documents)")}
        if "chunk_ids" not in columns:  # indexes written before records kept chunk ids
            self._db.execute("DROP TABLE documents")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run writes atomically across the vector and keyword indexes."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- writes -----------------------------------------------------------------

    def _insert(self, chunks: Sequence[Chunk], vectors: Vector | None) -> None:
        if vectors is not None and vectors.shape != (len(chunks), self._dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self._dim})")
        for i, chunk in enumerate(chunks):
            if vectors is None:
                # A keyword-only upsert keeps the vector the chunk already has.
                old = self._db.execute(
                    "SELECT vector FROM chunks WHERE chunk_id = ?", (chunk.chunk_id,)
                ).fetchone()
                blob = old[0] if old else None
            else:
                blob = np.asarray(vectors[i], np.float32).tobytes()
            self._db.execute("DELETE FROM chunks WHERE chunk_id = ?", (chunk.chunk_id,))
            cur = self._db.execute(
                "INSERT INTO chunks(chunk_id, doc_id, tenant_id, source, text, span_start, "
                "span_end, content_hash, acl, heading, page, vector) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    chunk.chunk_id,
                    chunk.doc_id,
                    chunk.tenant_id,
                    chunk.source,
                    chunk.text,
                    chunk.span[0],
                    chunk.span[1],
                    chunk.content_hash,
                    json.dumps(sorted(chunk.acl)),
                    chunk.heading,
                    chunk.page,
                    blob,
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO chunk_acl(grp, chunk_rowid) VALUES (?, ?)",
                [(g, cur.lastrowid) for g in set(chunk.acl)],
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

    # -- reads ------------------------------------------------------------------

    def count(self, flt: SearchFilter | None = None) -> int:
        """Count chunks, optionally only those visible to ``flt``."""
        with self._lock:
            if flt is None:
                row = self._db.execute("SELECT count(*) FROM chunks").fetchone()
            else:
                clause, groups = acl_clause(flt)
                row = self._db.execute(
                    f"SELECT count(*) FROM chunks c WHERE c.tenant_id = ? AND {clause}",
                    (flt.tenant_id, *groups),
                ).fetchone()
        return int(row[0])

    def keyword_search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """BM25 over FTS5, filtered by tenant and ACL inside the SQL query."""
        match = fts_query(query)
        if not match:
            return []
        clause, groups = acl_clause(flt)
        sql = (
            f"SELECT {COLUMNS}, bm25(chunks_fts) AS rank FROM chunks_fts "
            "JOIN chunks c ON c.rowid = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND c.tenant_id = ? AND {clause} "
            "ORDER BY rank LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (match, flt.tenant_id, *groups, k)).fetchall()
        # FTS5's bm25() is lower-is-better; negate so every engine scores higher-is-better.
        return [Hit(row_to_chunk(r), -float(r["rank"])) for r in rows]

    def _generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def _dense_cache(self) -> _DenseCache:
        generation = self._generation()
        if self._dense is not None and self._dense.generation == generation:
            return self._dense
        rows = self._db.execute(
            "SELECT rowid, tenant_id, acl, vector FROM chunks WHERE vector IS NOT NULL"
        ).fetchall()
        matrix = np.zeros((len(rows), self._dim), np.float32)
        for i, row in enumerate(rows):
            matrix[i] = np.frombuffer(row["vector"], np.float32)
        self._dense = _DenseCache(
            generation=generation,
            rowids=np.array([r["rowid"] for r in rows], np.int64),
            tenants=np.array([r["tenant_id"] for r in rows], dtype=object),
            public=np.array([r["acl"] == "[]" for r in rows], bool),
            matrix=matrix,
        )
        return self._dense

    def vector_search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """Exact cosine search over the caller's visible chunks only."""
        with self._lock:
            cache = self._dense_cache()
            mask = cache.tenants == flt.tenant_id
            if flt.groups:
                marks = ",".join("?" * len(flt.groups))
                allowed = [
                    r[0]
                    for r in self._db.execute(
                        f"SELECT chunk_rowid FROM chunk_acl WHERE grp IN ({marks})",
                        sorted(flt.groups),
                    )
                ]
                mask &= cache.public | np.isin(cache.rowids, allowed)
            else:
                mask &= cache.public
            candidates = np.flatnonzero(mask)
            if candidates.size == 0:
                return []
            scores = cache.matrix[candidates] @ np.asarray(vector, np.float32)
            top = np.argsort(-scores)[:k]
            ids = [int(cache.rowids[candidates[i]]) for i in top]
            marks = ",".join("?" * len(ids))
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM chunks c WHERE c.rowid IN ({marks})", ids
            ).fetchall()
            by_id = {int(r["rowid"]): r for r in rows}
        return [
            Hit(row_to_chunk(by_id[i]), float(scores[j])) for i, j in zip(ids, top, strict=True)
        ]


class EmbeddedVectorIndex:
    """The :class:`VectorIndex` view of an :class:`EmbeddedIndex`."""

    def __init__(self, index: EmbeddedIndex) -> None:
        """Wrap ``index``."""
        self.index = index

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        """Insert or replace chunks with their vectors."""
        self.index.upsert(chunks, vectors)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document."""
        return self.index.delete_document(tenant_id, doc_id)

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the nearest visible chunks."""
        return self.index.vector_search(vector, flt, k)

    def count(self, flt: SearchFilter | None = None) -> int:
        """Count chunks."""
        return self.index.count(flt)


class EmbeddedKeywordIndex:
    """The :class:`KeywordIndex` view of an :class:`EmbeddedIndex`."""

    def __init__(self, index: EmbeddedIndex) -> None:
        """Wrap ``index``."""
        self.index = index

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace chunks (keeping any stored vectors is not needed here)."""
        self.index.upsert(chunks)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Delete every chunk of a document."""
        return self.index.delete_document(tenant_id, doc_id)

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the best BM25 matches."""
        return self.index.keyword_search(query, flt, k)

    def count(self, flt: SearchFilter | None = None) -> int:
        """Count chunks."""
        return self.index.count(flt)
