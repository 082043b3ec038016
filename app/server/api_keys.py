"""API keys: created once, stored hashed, mapped to a tenant, a user, ACL groups and scopes.

A key reads ``rgt_<key id>_<secret>``. The key id is public (it names the key in
``ragent keys list`` and finds its record); the secret is 32 random bytes. Only the
SHA-256 of the whole key is stored, compared in constant time.

Why SHA-256 and not a slow password hash (bcrypt, scrypt, Argon2): those make each
guess of a *low-entropy* password expensive. A key here carries 256 random bits, so
even a stolen table cannot be reversed by guessing, however fast the hash; a slow KDF
would only add tens of milliseconds to every request.

The records (what a key stands for) live in SQLite on one machine, or in Redis shared by
replicas, behind the :class:`KeyStore` protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = [
    "DEFAULT_SCOPES",
    "SCOPES",
    "ApiKey",
    "KeyStore",
    "RedisKeyStore",
    "Scope",
    "SqliteKeyStore",
    "averify",
    "hash_key",
    "new_key",
    "open_key_store",
    "parse_key",
    "validate_identity",
]

Scope = Literal["chat", "ingest", "end_users", "admin"]
SCOPES: tuple[Scope, ...] = ("chat", "ingest", "end_users", "admin")
"""``chat``: chat, threads, runs, memories; ``ingest``: ingestion and its jobs;
``end_users``: the request may name an end user to act for (:mod:`app.server.end_users`);
``admin``: see and reset the quota usage of the key's tenant (``/v1/quota``)."""
DEFAULT_SCOPES: tuple[Scope, ...] = ("chat", "ingest")
"""What a key gets unless told otherwise: acting for end users is asked for explicitly."""


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """What a key stands for; the secret itself is never stored."""

    key_id: str
    tenant_id: str
    user_id: str
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    name: str = ""
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (no hash, no secret)."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant_id,
            "user": self.user_id,
            "groups": list(self.groups),
            "scopes": list(self.scopes),
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class KeyStore(Protocol):
    """Where key records live: SQLite on one machine, Redis for replicas."""

    def add(self, record: ApiKey, key_hash: str) -> None:
        """Store a new key's record and hash."""
        ...

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """Return a key's record and stored hash, or None."""
        ...

    async def afind(self, key_id: str) -> tuple[ApiKey, str] | None:
        """:meth:`find` for the event loop (the server checks a key on every request)."""
        ...

    def list(self) -> list[ApiKey]:
        """Return every key, oldest first."""
        ...

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when there is no such key."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    async def aclose(self) -> None:
        """Release connections, those :meth:`afind` opened included."""
        ...


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


PREFIX = "rgt"
_KEY = re.compile(r"^rgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


def validate_identity(kind: str, value: str) -> str:
    """Check a tenant or user id: letters, digits and ``_.@+-``, at most 128 characters.

    Ids never hold ``/`` or ``#``: thread keys join tenant and user with ``/`` and
    namespaces join tenant and name with ``#``, so neither can be forged.

    Raises:
        ValueError: The id is empty or holds other characters.
    """
    if not _IDENTITY.fullmatch(value):
        raise ValueError(
            f"invalid {kind} {value!r}: use letters, digits and _.@+- (at most 128, "
            "starting with a letter or digit)"
        )
    return value


def hash_key(key: str) -> str:
    """Return the hex SHA-256 of a whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """Return a fresh ``(key id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(key: str) -> str | None:
    """Return the key id of a well-formed key, else None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def verify(store: KeyStore, key: str) -> ApiKey | None:
    """Return the record of a valid, unrevoked key, else None (constant-time compare)."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    return _checked(store.find(key_id), key)


async def averify(store: KeyStore, key: str) -> ApiKey | None:
    """:func:`verify` on the event loop, through the store's :meth:`~KeyStore.afind`."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    return _checked(await store.afind(key_id), key)


def _checked(found: tuple[ApiKey, str] | None, key: str) -> ApiKey | None:
    if found is None:
        return None
    record, stored = found
    if not hmac.compare_digest(stored, hash_key(key)) or record.revoked_at is not None:
        return None
    return record


def create(
    store: KeyStore,
    *,
    tenant_id: str,
    user_id: str,
    groups: Sequence[str] = (),
    scopes: Sequence[str] = DEFAULT_SCOPES,
    name: str = "",
) -> tuple[ApiKey, str]:
    """Create and store a key; returns its record and the key, shown only this once.

    Raises:
        ValueError: A bad tenant, user, group or scope.
    """
    validate_identity("tenant", tenant_id)
    validate_identity("user", user_id)
    for group in groups:
        validate_identity("group", group)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(unknown)})")
    key_id, key = new_key()
    record = ApiKey(
        key_id=key_id,
        tenant_id=tenant_id,
        user_id=user_id,
        groups=tuple(sorted(set(groups))),
        scopes=tuple(s for s in SCOPES if s in scopes),
        name=name,
    )
    store.add(record, hash_key(key))
    return record, key
