"""Where each source's sync cursor and last result are kept between runs (a SQLite file)."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CursorStore", "SyncState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source_state (
    tenant_id TEXT NOT NULL,
    source TEXT NOT NULL,
    cursor TEXT,
    last_result TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, source)
)
"""


@dataclass(frozen=True, slots=True)
class SyncState:
    """A source's cursor and the report of its last finished sync."""

    cursor: str | None
    last_result: dict[str, object] | None
    updated_at: float


class CursorStore:
    """Keeps one cursor per (tenant, source); written only when a sync finishes."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the store at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self.folder = path.parent
        """Where the store lives (the syncs' lock files sit beside it)."""
        with closing(self._connect()) as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30, isolation_level=None)

    def get(self, tenant_id: str, source: str) -> SyncState | None:
        """Return the source's state, or None before its first finished sync."""
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT cursor, last_result, updated_at FROM source_state"
                " WHERE tenant_id = ? AND source = ?",
                (tenant_id, source),
            ).fetchone()
        if row is None:
            return None
        return SyncState(row[0], json.loads(row[1]) if row[1] else None, row[2])

    def put(
        self, tenant_id: str, source: str, cursor: str | None, result: dict[str, object]
    ) -> None:
        """Record a finished sync: its cursor and its report."""
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO source_state VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, source) DO UPDATE SET cursor = excluded.cursor,"
                " last_result = excluded.last_result, updated_at = excluded.updated_at",
                (tenant_id, source, cursor, json.dumps(result), time.time()),
            )
