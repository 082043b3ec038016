"""Stores of API key records: SQLite on one machine, Redis shared by replicas."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from app.server.key_records import ApiKey, KeyStore

__all__ = ["RedisKeyStore", "SqliteKeyStore", "open_key_store"]


def _record(values: dict[str, Any]) -> ApiKey:
    revoked = values.get("revoked_at")
    return ApiKey(
        key_id=str(values["key_id"]),
        tenant_id=str(values["tenant_id"]),
        user_id=str(values["user_id"]),
        groups=tuple(json.loads(values["groups"])),
        scopes=tuple(json.loads(values["scopes"])),
        name=str(values.get("name") or ""),
        created_at=float(values["created_at"]),
        revoked_at=float(revoked) if revoked not in (None, "") else None,
    )


def _row(record: ApiKey, key_hash: str) -> dict[str, str | float]:
    return {
        "key_id": record.key_id,
        "key_hash": key_hash,
        "tenant_id": record.tenant_id,
        "user_id": record.user_id,
        "groups": json.dumps(list(record.groups)),
        "scopes": json.dumps(list(record.scopes)),
        "name": record.name,
        "created_at": record.created_at,
        "revoked_at": "" if record.revoked_at is None else record.revoked_at,
    }


class SqliteKeyStore:
    """Keys in ``<data_dir>/server.sqlite``."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the database."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT "
            "NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, groups TEXT NOT NULL, "
            "scopes TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL, "
            "revoked_at REAL)"
        )

    def add(self, record: ApiKey, key_hash: str) -> None:
        """Store a new key."""
        row: dict[str, Any] = {**_row(record, key_hash), "revoked_at": record.revoked_at}
        self._db.execute(
            "INSERT INTO api_keys VALUES (:key_id, :key_hash, :tenant_id, :user_id, :groups, "
            ":scopes, :name, :created_at, :revoked_at)",
            row,
        )

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """Return a key's record and hash."""
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else (_record(dict(row)), str(row["key_hash"]))

    async def afind(self, key_id: str) -> tuple[ApiKey, str] | None:
        """:meth:`find` in a worker thread: SQLite may wait on another process's lock."""
        return await asyncio.to_thread(self.find, key_id)

    def list(self) -> list[ApiKey]:
        """Return every key, oldest first."""
        rows = self._db.execute("SELECT * FROM api_keys ORDER BY created_at").fetchall()
        return [_record(dict(r)) for r in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (kept, so the listing shows when)."""
        cur = self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        if cur.rowcount:
            return True
        return self.find(key_id) is not None

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    async def aclose(self) -> None:
        """Close the database, off the event loop."""
        await asyncio.to_thread(self.close)


class RedisKeyStore:
    """Keys as Redis hashes ``ragent:key:<id>``, listed through the set ``ragent:keys``."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``."""
        import redis

        self._url = url
        self._r = redis.Redis.from_url(url, decode_responses=True)
        self._async: Any = None

    def add(self, record: ApiKey, key_hash: str) -> None:
        """Store a new key."""
        pipe = self._r.pipeline()
        row: dict[Any, Any] = _row(record, key_hash)
        pipe.hset(f"ragent:key:{record.key_id}", mapping=row)
        pipe.sadd("ragent:keys", record.key_id)
        pipe.execute()

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """Return a key's record and hash."""
        values: dict[str, Any] = self._r.hgetall(f"ragent:key:{key_id}")  # type: ignore[assignment]
        return (_record(values), str(values["key_hash"])) if values else None

    async def afind(self, key_id: str) -> tuple[ApiKey, str] | None:
        """:meth:`find` on redis-py's asyncio client: no worker thread per request."""
        if self._async is None:  # made on first use, on the server's event loop
            from redis.asyncio import Redis

            self._async = Redis.from_url(self._url, decode_responses=True)
        values: dict[str, Any] = await self._async.hgetall(f"ragent:key:{key_id}")
        return (_record(values), str(values["key_hash"])) if values else None

    def list(self) -> list[ApiKey]:
        """Return every key, oldest first."""
        ids: set[str] = self._r.smembers("ragent:keys")  # type: ignore[assignment]
        found = [self.find(i) for i in ids]
        return sorted((f[0] for f in found if f is not None), key=lambda r: r.created_at)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (kept, so the listing shows when)."""
        found = self.find(key_id)
        if found is None:
            return False
        if found[0].revoked_at is None:
            self._r.hset(f"ragent:key:{key_id}", "revoked_at", time.time())
        return True

    def close(self) -> None:
        """Close the connection pool."""
        self._r.close()

    async def aclose(self) -> None:
        """Close both connection pools."""
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        await asyncio.to_thread(self._r.close)


def open_key_store(data_dir: Path, redis_url: str | None) -> KeyStore:
    """Return the key store of a deployment: Redis when ``server.redis_url`` is set."""
    if redis_url:
        return RedisKeyStore(redis_url)
    return SqliteKeyStore(data_dir / "server.sqlite")
