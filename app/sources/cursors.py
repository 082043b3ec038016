"""Where each source's sync cursor and last result are kept between runs.

A SQLite file in the data folder (``sources.sqlite``), or Redis next to the sync status
(``ragent:source:<id>:cursor``) when ``server.redis_url`` is set, so that every replica,
even one with a fresh data folder, reads on from the last finished sync. Either way the
cursor is written in one step, only once a sync has committed everything before it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.ingest.ids import stable_id

__all__ = ["CursorStore", "Cursors", "RedisCursorStore", "SyncState"]

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


class Cursors(Protocol):
    """One cursor per (tenant, source); written only when a sync finishes."""

    def get(self, tenant_id: str, source: str) -> SyncState | None:
        """Return the source's state, or None before its first finished sync."""
        ...

    def put(
        self, tenant_id: str, source: str, cursor: str | None, result: dict[str, object]
    ) -> None:
        """Record a finished sync: its cursor and its report, in one write."""
        ...


class CursorStore:
    """Keeps one cursor per (tenant, source) in a SQLite file; written when a sync finishes."""

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


class RedisCursorStore:
    """Cursors in Redis (``ragent:source:<id>:cursor``), beside the status every replica reads."""

    def __init__(self, client: Any) -> None:
        """Use ``client`` (a synchronous ``redis.Redis``)."""
        self._r = client

    @staticmethod
    def _key(tenant_id: str, source: str) -> str:
        return f"ragent:source:{stable_id(tenant_id, source)}:cursor"

    def get(self, tenant_id: str, source: str) -> SyncState | None:
        """GET the state."""
        raw = self._r.get(self._key(tenant_id, source))
        if raw is None:
            return None
        data = json.loads(raw)
        return SyncState(data["cursor"], data["last_result"], float(data["updated_at"]))

    def put(
        self, tenant_id: str, source: str, cursor: str | None, result: dict[str, object]
    ) -> None:
        """SET the cursor and the report as one value (one atomic write)."""
        value = {"cursor": cursor, "last_result": result, "updated_at": time.time()}
        self._r.set(self._key(tenant_id, source), json.dumps(value))
