"""Who started each streamed run, on which conversation, and whether it ended.

A record is written when a run starts (``running``) and again when it ends (``done``),
so a reconnect with ``Last-Event-ID`` after a crash finds the run and learns that it
was interrupted, instead of waiting on a log that no one writes. With
``server.redis_url`` the records live in Redis with the rest of the shared state; in
the embedded profile that state is in process memory, lost with the process, so the
records go to ``<data_dir>/server.sqlite`` (WAL, ``synchronous=NORMAL``: a commit
survives a crash of the process).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

from app.server.shared_state import SharedState

__all__ = ["RunRecord", "RunRecords", "SqliteRunRecords", "StateRunRecords", "open_records"]

Status = Literal["running", "done"]


@dataclass(frozen=True)
class RunRecord:
    """One streamed run."""

    owner: str
    """``tenant/user`` of whoever started it."""
    thread_id: str = ""
    """The conversation it answers."""
    lock: str = ""
    """The key of the conversation lock the run holds (``""``: none)."""
    token: str = ""
    """The lock's value while this run holds it."""
    status: Status = "running"


class RunRecords(Protocol):
    """Run records with a TTL."""

    async def put(self, run_id: str, record: RunRecord, ttl_s: float) -> None:
        """Store (or replace) a run's record for ``ttl_s``."""
        ...

    async def get(self, run_id: str) -> RunRecord | None:
        """Return a run's record, or None when unknown or expired."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _decode(raw: str) -> RunRecord:
    if not raw.startswith("{"):  # written before records had fields: the owner alone
        return RunRecord(owner=raw, status="done")
    fields = json.loads(raw)
    return RunRecord(**{k: v for k, v in fields.items() if k in RunRecord.__dataclass_fields__})


class StateRunRecords:
    """Records in the deployment's shared state (Redis with ``server.redis_url``)."""

    def __init__(self, state: SharedState) -> None:
        """Keep records as ``run:<id>`` in ``state``."""
        self._state = state

    async def put(self, run_id: str, record: RunRecord, ttl_s: float) -> None:
        """Store a record."""
        await self._state.set(f"run:{run_id}", json.dumps(asdict(record)), ttl_s)

    async def get(self, run_id: str) -> RunRecord | None:
        """Return a record."""
        raw = await self._state.get(f"run:{run_id}")
        return None if raw is None else _decode(raw)

    async def close(self) -> None:
        """The shared state is closed by its owner."""


class SqliteRunRecords:
    """Records in a SQLite table, for a deployment whose shared state is in memory."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the table."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, record TEXT NOT NULL, "
            "expires_at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS runs_expiry ON runs (expires_at)")

    def _put(self, run_id: str, raw: str, expires_at: float) -> None:
        with self._lock:
            self._db.execute("DELETE FROM runs WHERE expires_at < ?", (time.time(),))
            self._db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (run_id, raw, expires_at)
            )

    def _get(self, run_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM runs WHERE run_id = ? AND expires_at >= ?",
                (run_id, time.time()),
            ).fetchone()
        return None if row is None else str(row[0])

    async def put(self, run_id: str, record: RunRecord, ttl_s: float) -> None:
        """Store a record."""
        raw = json.dumps(asdict(record))
        await asyncio.to_thread(self._put, run_id, raw, time.time() + ttl_s)

    async def get(self, run_id: str) -> RunRecord | None:
        """Return a record."""
        raw = await asyncio.to_thread(self._get, run_id)
        return None if raw is None else _decode(raw)

    async def close(self) -> None:
        """Close the database."""
        await asyncio.to_thread(self._db.close)


def open_records(data_dir: Path, state: SharedState, redis_url: str | None) -> RunRecords:
    """Return where run records live: the shared state with Redis, else SQLite."""
    if redis_url:
        return StateRunRecords(state)
    return SqliteRunRecords(data_dir / "server.sqlite")
