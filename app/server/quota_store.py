"""Usage counters per subject and quota window: SQLite on one machine, Redis for replicas.

A subject is ``tenant:<tenant>`` or ``user:<tenant>/<user>``; a window is the number of
whole periods since the UTC epoch. Increments are atomic in both stores (an SQLite
upsert, a Redis ``MULTI`` of ``HINCRBY``), so workers and replicas sharing a store never
lose a count.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["RedisUsageStore", "SqliteUsageStore", "Usage", "UsageStore", "open_usage_store"]


@dataclass(frozen=True)
class Usage:
    """What a subject used in one window."""

    requests: int = 0
    tokens: int = 0


class UsageStore(Protocol):
    """Where usage counters live."""

    async def add(
        self, subject: str, window: int, *, requests: int = 0, tokens: int = 0, ttl_s: int
    ) -> Usage:
        """Add to a subject's counters in ``window`` (kept ``ttl_s``); returns the new totals."""
        ...

    async def counts(self, window: int, prefix: str = "") -> dict[str, Usage]:
        """Return the counters of every subject starting with ``prefix`` in ``window``."""
        ...

    async def reset(self, window: int, subjects: list[str]) -> int:
        """Zero subjects' counters in ``window``; returns how many had any."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class SqliteUsageStore:
    """Counters in ``<data_dir>/server.sqlite`` (table ``quota_usage``)."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the table."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS quota_usage (window INTEGER NOT NULL, subject TEXT NOT "
            "NULL, requests INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (window, "
            "subject))"
        )
        self._pruned = -1

    def _add(self, subject: str, window: int, requests: int, tokens: int) -> Usage:
        with self._lock:
            if window != self._pruned:  # older windows are over: their rows go
                self._db.execute("DELETE FROM quota_usage WHERE window < ?", (window - 1,))
                self._pruned = window
            row = self._db.execute(
                "INSERT INTO quota_usage VALUES (?, ?, ?, ?) ON CONFLICT (window, subject) DO "
                "UPDATE SET requests = requests + excluded.requests, tokens = tokens + "
                "excluded.tokens RETURNING requests, tokens",
                (window, subject, requests, tokens),
            ).fetchone()
        return Usage(int(row[0]), int(row[1]))

    async def add(
        self, subject: str, window: int, *, requests: int = 0, tokens: int = 0, ttl_s: int
    ) -> Usage:
        """Add to the counters, in a worker thread (another process may hold the lock)."""
        return await asyncio.to_thread(self._add, subject, window, requests, tokens)

    def _list(self, window: int, prefix: str) -> dict[str, Usage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT subject, requests, tokens FROM quota_usage WHERE window = ? AND "
                "substr(subject, 1, ?) = ? ORDER BY subject",
                (window, len(prefix), prefix),
            ).fetchall()
        return {str(r[0]): Usage(int(r[1]), int(r[2])) for r in rows}

    async def counts(self, window: int, prefix: str = "") -> dict[str, Usage]:
        """Return the counters of ``window``."""
        return await asyncio.to_thread(self._list, window, prefix)

    def _reset(self, window: int, subjects: list[str]) -> int:
        with self._lock:
            cur = self._db.executemany(
                "DELETE FROM quota_usage WHERE window = ? AND subject = ?",
                [(window, s) for s in subjects],
            )
        return max(cur.rowcount, 0)

    async def reset(self, window: int, subjects: list[str]) -> int:
        """Zero subjects' counters."""
        return await asyncio.to_thread(self._reset, window, subjects)

    async def aclose(self) -> None:
        """Close the database."""
        await asyncio.to_thread(self._db.close)


class RedisUsageStore:
    """Counters as Redis hashes ``ragent:quota:<window>:<subject>``, expiring after the window."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``, on the event loop that first uses the store."""
        self._url = url
        self._redis: Any = None

    def _client(self) -> Any:
        if self._redis is None:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(self._url, decode_responses=True)
        return self._redis

    async def add(
        self, subject: str, window: int, *, requests: int = 0, tokens: int = 0, ttl_s: int
    ) -> Usage:
        """Add to the counters atomically (``MULTI``/``EXEC``)."""
        key = f"ragent:quota:{window}:{subject}"
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "requests", requests)
            pipe.hincrby(key, "tokens", tokens)
            pipe.expire(key, ttl_s)
            done, used, _ = await pipe.execute()
        return Usage(int(done), int(used))

    async def counts(self, window: int, prefix: str = "") -> dict[str, Usage]:
        """Return the counters of ``window`` (a ``SCAN`` over its keys)."""
        redis = self._client()
        head = f"ragent:quota:{window}:"
        found: dict[str, Usage] = {}
        async for key in redis.scan_iter(match=f"{head}{_glob(prefix)}*", count=500):
            values = await redis.hgetall(key)
            found[key[len(head) :]] = Usage(
                int(values.get("requests", 0)), int(values.get("tokens", 0))
            )
        return dict(sorted(found.items()))

    async def reset(self, window: int, subjects: list[str]) -> int:
        """Zero subjects' counters."""
        if not subjects:
            return 0
        keys = [f"ragent:quota:{window}:{s}" for s in subjects]
        return int(await self._client().delete(*keys))

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def _glob(text: str) -> str:
    """Escape Redis glob characters."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def open_usage_store(data_dir: Path, redis_url: str | None) -> UsageStore:
    """Return the usage store of a deployment: Redis when ``server.redis_url`` is set."""
    if redis_url:
        return RedisUsageStore(redis_url)
    return SqliteUsageStore(data_dir / "server.sqlite")
