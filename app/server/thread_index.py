"""Which threads each user has, newest first: the listing behind ``GET /v1/threads``.

Checkpoints hold the messages; this index holds one row per thread and owner, so a
listing never scans every checkpoint. SQLite (``<data_dir>/server.sqlite``) by
default, a Redis sorted set per owner with ``server.redis_url``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "RedisThreadIndex",
    "SqliteThreadIndex",
    "ThreadIndex",
    "ThreadInfo",
    "forget_key",
    "open_index",
]

TITLE_CHARS = 80


@dataclass(frozen=True)
class ThreadInfo:
    """One thread of one owner."""

    thread_id: str
    title: str
    created_at: float
    updated_at: float

    def as_dict(self) -> dict[str, Any]:
        """Return the thread as a JSON-ready dict."""
        return {
            "id": self.thread_id,
            "object": "thread",
            "title": self.title,
            "created_at": int(self.created_at),
            "updated_at": int(self.updated_at),
        }


class ThreadIndex(Protocol):
    """Threads per owner (``tenant/user``)."""

    async def touch(self, owner: str, thread_id: str, title: str) -> None:
        """Record activity on a thread; its title is kept from the first turn."""
        ...

    async def list(self, owner: str, *, limit: int, before: float | None) -> list[ThreadInfo]:
        """Return an owner's threads updated before ``before``, newest first."""
        ...

    async def get(self, owner: str, thread_id: str) -> ThreadInfo | None:
        """Return one thread, or None."""
        ...

    async def remove(self, owner: str, thread_id: str) -> bool:
        """Forget a thread; False when the owner has no such thread."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class SqliteThreadIndex:
    """The index in a SQLite table."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the table."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable but for power loss
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS threads (owner TEXT NOT NULL, thread_id TEXT NOT NULL, "
            "title TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
            "PRIMARY KEY (owner, thread_id))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS threads_recent ON threads (owner, updated_at)")

    def _run(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            cur = self._db.execute(sql, args)
            return [*cur.fetchall(), cur.rowcount]

    async def touch(self, owner: str, thread_id: str, title: str) -> None:
        """Insert or refresh a thread."""
        now = time.time()
        await asyncio.to_thread(
            self._run,
            "INSERT INTO threads VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, thread_id) DO "
            "UPDATE SET updated_at = excluded.updated_at",
            (owner, thread_id, title[:TITLE_CHARS], now, now),
        )

    async def list(self, owner: str, *, limit: int, before: float | None) -> list[ThreadInfo]:
        """Newest first."""
        rows = await asyncio.to_thread(
            self._run,
            "SELECT thread_id, title, created_at, updated_at FROM threads WHERE owner = ? AND "
            "updated_at < ? ORDER BY updated_at DESC LIMIT ?",
            (owner, before if before is not None else float("inf"), limit),
        )
        return [ThreadInfo(*row) for row in rows[:-1]]

    async def get(self, owner: str, thread_id: str) -> ThreadInfo | None:
        """One thread."""
        rows = await asyncio.to_thread(
            self._run,
            "SELECT thread_id, title, created_at, updated_at FROM threads WHERE owner = ? AND "
            "thread_id = ?",
            (owner, thread_id),
        )
        return ThreadInfo(*rows[0]) if len(rows) > 1 else None

    async def remove(self, owner: str, thread_id: str) -> bool:
        """Delete a row."""
        rows = await asyncio.to_thread(
            self._run, "DELETE FROM threads WHERE owner = ? AND thread_id = ?", (owner, thread_id)
        )
        return bool(rows[-1])

    async def close(self) -> None:
        """Close the database."""
        await asyncio.to_thread(self._db.close)


class RedisThreadIndex:
    """A sorted set ``ragent:threads:<owner>`` (by update time) and a hash of details."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``."""
        from redis.asyncio import Redis

        self._r: Any = Redis.from_url(url, decode_responses=True)

    async def touch(self, owner: str, thread_id: str, title: str) -> None:
        """Insert or refresh a thread."""
        now = time.time()
        info = json.dumps({"title": title[:TITLE_CHARS], "created_at": now})
        pipe = self._r.pipeline(transaction=True)
        pipe.zadd(f"ragent:threads:{owner}", {thread_id: now})
        pipe.hsetnx(f"ragent:threadinfo:{owner}", thread_id, info)
        await pipe.execute()

    async def list(self, owner: str, *, limit: int, before: float | None) -> list[ThreadInfo]:
        """Newest first."""
        top = f"({before}" if before is not None else "+inf"
        found = await self._r.zrevrangebyscore(
            f"ragent:threads:{owner}", top, "-inf", start=0, num=limit, withscores=True
        )
        if not found:
            return []
        infos = await self._r.hmget(f"ragent:threadinfo:{owner}", [t for t, _ in found])
        out = []
        for (thread_id, updated), raw in zip(found, infos, strict=True):
            info = json.loads(raw) if raw else {"title": "", "created_at": updated}
            out.append(ThreadInfo(thread_id, info["title"], info["created_at"], updated))
        return out

    async def get(self, owner: str, thread_id: str) -> ThreadInfo | None:
        """One thread."""
        updated = await self._r.zscore(f"ragent:threads:{owner}", thread_id)
        if updated is None:
            return None
        raw = await self._r.hget(f"ragent:threadinfo:{owner}", thread_id)
        info = json.loads(raw) if raw else {"title": "", "created_at": updated}
        return ThreadInfo(thread_id, info["title"], info["created_at"], float(updated))

    async def remove(self, owner: str, thread_id: str) -> bool:
        """Delete a thread's entries."""
        pipe = self._r.pipeline(transaction=True)
        pipe.zrem(f"ragent:threads:{owner}", thread_id)
        pipe.hdel(f"ragent:threadinfo:{owner}", thread_id)
        removed, _ = await pipe.execute()
        return bool(removed)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._r.aclose()


def open_index(data_dir: Path, redis_url: str | None) -> ThreadIndex:
    """Return the deployment's thread index: Redis when ``server.redis_url`` is set."""
    if redis_url:
        return RedisThreadIndex(redis_url)
    return SqliteThreadIndex(data_dir / "server.sqlite")


async def forget_key(index: ThreadIndex, thread_key: str) -> None:
    """Remove the entry of a thread named by its checkpoint key ``<owner>/<thread id>``.

    Thread ids hold no ``/``, so the owner is everything before the last one; a key
    without one (a thread made outside this API) has no entry.
    """
    owner, _, thread_id = thread_key.rpartition("/")
    if owner:
        await index.remove(owner, thread_id)
