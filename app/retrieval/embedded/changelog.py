"""Reading the chunk change log that keeps the derived indexes in step with SQLite.

The ``chunks`` table is the source of truth. Triggers log every insert and
delete in ``changes``; the tantivy keyword index (shared on disk) and each
process's in-memory dense index remember the last sequence number they applied
and catch up from there. Applying a change means "make rowid R look like the
chunks table does now", so replaying one twice is harmless.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from app.retrieval.embedded.dense import DenseRow
from app.retrieval.embedded.keyword import KeywordRow

__all__ = ["LogState", "dense_rows", "keyword_rows", "log_state", "prune", "touched"]

RETAIN = 200_000
"""Log entries kept behind the keyword index, so lagging readers catch up incrementally."""

_BATCH = 20_000


@dataclass(frozen=True, slots=True)
class LogState:
    """Where the log and the shared keyword index stand."""

    head: int
    """The newest sequence number (0 when nothing was ever written)."""
    keyword_seq: int
    """The last sequence applied to the keyword index; -1 means rebuild it."""
    pruned_through: int
    """Entries up to here are gone; a reader behind it reloads everything."""


def log_state(db: sqlite3.Connection) -> LogState:
    """Read the log head and the shared watermarks in one statement."""
    row = db.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM changes), "
        "(SELECT value FROM meta WHERE key = 'keyword_seq'), "
        "(SELECT value FROM meta WHERE key = 'pruned_through')"
    ).fetchone()
    return LogState(head=int(row[0]), keyword_seq=int(row[1]), pruned_through=int(row[2]))


def touched(db: sqlite3.Connection, after: int, through: int) -> list[int]:
    """Rowids inserted or deleted in ``(after, through]``."""
    rows = db.execute(
        "SELECT DISTINCT chunk_rowid FROM changes WHERE seq > ? AND seq <= ?", (after, through)
    )
    return [int(r[0]) for r in rows]


def _in_batches(
    db: sqlite3.Connection, select: str, rowids: list[int] | None
) -> Iterator[sqlite3.Row]:
    if rowids is None:
        yield from db.execute(f"{select} ORDER BY rowid")
        return
    for i in range(0, len(rowids), _BATCH):
        part = rowids[i : i + _BATCH]
        db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted(r INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM wanted")
        db.executemany("INSERT INTO wanted(r) VALUES (?)", [(r,) for r in part])
        yield from db.execute(f"{select} AND rowid IN (SELECT r FROM wanted) ORDER BY rowid")


def keyword_rows(db: sqlite3.Connection, rowids: list[int] | None) -> Iterator[KeywordRow]:
    """Current keyword content of ``rowids`` that still exist (all chunks when None)."""
    select = "SELECT rowid, tenant_id, acl, text, heading FROM chunks WHERE 1"
    for row in _in_batches(db, select, rowids):
        yield KeywordRow(
            rowid=int(row[0]),
            tenant_id=row[1],
            acl=tuple(json.loads(row[2])),
            text=row[3],
            heading=row[4],
        )


def dense_rows(db: sqlite3.Connection, rowids: list[int] | None) -> Iterator[DenseRow]:
    """Current vectors of ``rowids`` that still exist and have one (all when None)."""
    select = "SELECT rowid, tenant_id, acl, vector FROM chunks WHERE vector IS NOT NULL"
    for row in _in_batches(db, select, rowids):
        yield DenseRow(
            rowid=int(row[0]),
            tenant_id=row[1],
            acl=tuple(json.loads(row[2])),
            vector=np.frombuffer(row[3], np.float32),
        )


def prune(db: sqlite3.Connection, keyword_seq: int) -> None:
    """Drop log entries well behind the keyword index (inside the caller's transaction)."""
    through = keyword_seq - RETAIN
    if through <= 0:
        return
    db.execute("DELETE FROM changes WHERE seq <= ?", (through,))
    db.execute("UPDATE meta SET value = ? WHERE key = 'pruned_through'", (through,))
