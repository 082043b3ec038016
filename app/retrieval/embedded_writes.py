"""The write side of :class:`~app.retrieval.embedded.EmbeddedIndex`: chunks and records.

Every write is one SQLite transaction; the change log it leaves behind is what the
keyword and dense indexes follow.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from app.retrieval.protocols import Vector
from app.retrieval.types import Chunk, DocumentRecord

__all__ = ["EmbeddedWrites"]

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


class EmbeddedWrites:
    """Transactions, chunk upserts and deletes, and document records over one database."""

    _db: sqlite3.Connection
    _dim: int
    _lock: threading.RLock

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
