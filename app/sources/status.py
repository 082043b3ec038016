"""Where each source's sync status is kept: a SQLite file, or Redis for every replica.

A status is one JSON object per (tenant, source), rewritten as a sync starts, as it
progresses and when it ends; each finished run is also appended to a short history
(:data:`RUNS_KEPT` runs), which says who ran it and when.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

from app.ingest.ids import stable_id

__all__ = ["RUNS_KEPT", "RedisStatusStore", "SqliteStatusStore", "StatusStore"]

RUNS_KEPT = 50
"""Finished runs kept per source."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source_status (
    tenant_id TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (tenant_id, source)
);
CREATE TABLE IF NOT EXISTS source_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    source TEXT NOT NULL,
    run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS source_runs_by_source ON source_runs(tenant_id, source, seq);
"""


class StatusStore(Protocol):
    """Sync statuses and run histories (blocking calls: run them off the event loop)."""

    def get(self, tenant_id: str, source: str) -> dict[str, Any] | None:
        """The source's status, or None before its first sync."""
        ...

    def put(self, tenant_id: str, source: str, status: dict[str, Any]) -> None:
        """Replace the source's status."""
        ...

    def add_run(self, tenant_id: str, source: str, run: dict[str, Any]) -> None:
        """Append a finished run to the source's history (the oldest past the bound go)."""
        ...

    def runs(self, tenant_id: str, source: str) -> list[dict[str, Any]]:
        """The source's finished runs, oldest first."""
        ...


class SqliteStatusStore:
    """Statuses in a SQLite file (the embedded profile's ``sources.sqlite``)."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the tables in ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30, isolation_level=None)

    def get(self, tenant_id: str, source: str) -> dict[str, Any] | None:
        """Return the status row."""
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT status FROM source_status WHERE tenant_id = ? AND source = ?",
                (tenant_id, source),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, tenant_id: str, source: str, status: dict[str, Any]) -> None:
        """Upsert the status row."""
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO source_status VALUES (?, ?, ?) ON CONFLICT (tenant_id, source)"
                " DO UPDATE SET status = excluded.status",
                (tenant_id, source, json.dumps(status)),
            )

    def add_run(self, tenant_id: str, source: str, run: dict[str, Any]) -> None:
        """Insert a run and delete those past :data:`RUNS_KEPT`."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO source_runs(tenant_id, source, run) VALUES (?, ?, ?)",
                (tenant_id, source, json.dumps(run)),
            )
            db.execute(
                "DELETE FROM source_runs WHERE tenant_id = ? AND source = ? AND seq NOT IN"
                " (SELECT seq FROM source_runs WHERE tenant_id = ? AND source = ?"
                " ORDER BY seq DESC LIMIT ?)",
                (tenant_id, source, tenant_id, source, RUNS_KEPT),
            )
            db.execute("COMMIT")

    def runs(self, tenant_id: str, source: str) -> list[dict[str, Any]]:
        """Return the runs, oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT run FROM source_runs WHERE tenant_id = ? AND source = ? ORDER BY seq",
                (tenant_id, source),
            ).fetchall()
        return [dict(json.loads(row[0])) for row in rows]


class RedisStatusStore:
    """Statuses in Redis (``ragent:source:<id>:status`` and ``:runs``), seen by every replica."""

    def __init__(self, client: Any) -> None:
        """Use ``client`` (a synchronous ``redis.Redis``)."""
        self._r = client

    @staticmethod
    def _key(tenant_id: str, source: str, what: str) -> str:
        return f"ragent:source:{stable_id(tenant_id, source)}:{what}"

    def get(self, tenant_id: str, source: str) -> dict[str, Any] | None:
        """GET the status."""
        raw = self._r.get(self._key(tenant_id, source, "status"))
        return None if raw is None else dict(json.loads(raw))

    def put(self, tenant_id: str, source: str, status: dict[str, Any]) -> None:
        """SET the status."""
        self._r.set(self._key(tenant_id, source, "status"), json.dumps(status))

    def add_run(self, tenant_id: str, source: str, run: dict[str, Any]) -> None:
        """RPUSH the run and LTRIM the list, in one transaction."""
        key = self._key(tenant_id, source, "runs")
        pipe = self._r.pipeline(transaction=True)
        pipe.rpush(key, json.dumps(run))
        pipe.ltrim(key, -RUNS_KEPT, -1)
        pipe.execute()

    def runs(self, tenant_id: str, source: str) -> list[dict[str, Any]]:
        """LRANGE the runs."""
        raw = self._r.lrange(self._key(tenant_id, source, "runs"), 0, -1)
        return [dict(json.loads(item)) for item in raw]
