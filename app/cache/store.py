"""The protocol of an answer-cache engine, and the embedded engine on SQLite."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Protocol

import numpy as np

from app.cache.entry import CachedAnswer
from app.retrieval.protocols import Vector

__all__ = ["AnswerStore", "Candidate", "SqliteAnswerStore", "cosine"]

Candidate = tuple[str, CachedAnswer, float]
"""An entry's id, the entry, and its question's cosine similarity to the one looked up."""


def cosine(matrix: Vector, vector: Vector) -> Vector:
    """Cosine similarity of each row of ``matrix`` to ``vector``."""
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(vector))
    return np.asarray(matrix @ vector / np.maximum(norms, 1e-12), dtype=np.float32)


class AnswerStore(Protocol):
    """Where entries live: scoped, bounded in number and age, shared by processes."""

    def nearest(self, scope: str, vector: Vector, k: int) -> list[Candidate]:
        """The ``k`` live entries of ``scope`` whose questions are nearest, nearest first."""
        ...

    def put(self, scope: str, vector: Vector, entry: CachedAnswer) -> str:
        """Store an entry, drop the oldest past the size bound; return its id."""
        ...

    def delete(self, entry_id: str) -> None:
        """Drop one entry (a stale one)."""
        ...

    def count(self) -> int:
        """How many entries are stored."""
        ...

    def clear(self) -> int:
        """Drop every entry and counter; return how many entries there were."""
        ...

    def close(self) -> None:
        """Release the engine's connections."""
        ...

    def bump(self, counts: dict[str, float]) -> None:
        """Add to the shared counters (lookups, hits, stale, saved tokens, ...)."""
        ...

    def counters(self) -> dict[str, float]:
        """Return the shared counters."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    created REAL NOT NULL,
    vector BLOB NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_scope ON entries(scope, created);
CREATE INDEX IF NOT EXISTS entries_created ON entries(created);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""


class SqliteAnswerStore:
    """Entries in a SQLite file; the vectors of one scope compared with numpy.

    Several processes may share the file (WAL mode; writes wait on SQLite's lock).
    """

    def __init__(self, path: Path, *, ttl_s: float, max_entries: int) -> None:
        """Open (and create) the store at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def nearest(self, scope: str, vector: Vector, k: int) -> list[Candidate]:
        """The ``k`` live entries of ``scope`` nearest to ``vector``, nearest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, vector, body FROM entries WHERE scope = ? AND created >= ?",
                (scope, time.time() - self.ttl_s),
            ).fetchall()
        if not rows:
            return []
        matrix = np.stack([np.frombuffer(row[1], dtype=np.float32) for row in rows])
        scores = cosine(matrix, np.asarray(vector, dtype=np.float32))
        best = np.argsort(-scores)[:k]
        return [(rows[i][0], CachedAnswer.from_json(rows[i][2]), float(scores[i])) for i in best]

    def put(self, scope: str, vector: Vector, entry: CachedAnswer) -> str:
        """Store an entry; expired ones and the oldest past ``max_entries`` go."""
        entry_id = uuid.uuid4().hex
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO entries(id, scope, created, vector, body) VALUES (?,?,?,?,?)",
                (entry_id, scope, entry.created, blob, entry.to_json()),
            )
            self._db.execute("DELETE FROM entries WHERE created < ?", (time.time() - self.ttl_s,))
            self._db.execute(
                "DELETE FROM entries WHERE id IN (SELECT id FROM entries "
                "ORDER BY created DESC LIMIT -1 OFFSET ?)",
                (self.max_entries,),
            )
        return entry_id

    def delete(self, entry_id: str) -> None:
        """Drop one entry."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))

    def count(self) -> int:
        """How many entries are stored."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def clear(self) -> int:
        """Drop every entry and counter."""
        with self._lock, self._db:
            removed = self._db.execute("DELETE FROM entries").rowcount
            self._db.execute("DELETE FROM counters")
        return int(removed)

    def bump(self, counts: dict[str, float]) -> None:
        """Add to the shared counters."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO counters(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                list(counts.items()),
            )

    def counters(self) -> dict[str, float]:
        """Return the shared counters."""
        with self._lock:
            rows = self._db.execute("SELECT name, value FROM counters").fetchall()
        return {name: float(value) for name, value in rows}
