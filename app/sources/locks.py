"""One sync of a source at a time: a file lock on one host, a Redis lock across replicas."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from app.ingest.ids import stable_id

__all__ = [
    "FileSourceLock",
    "LockFactory",
    "RedisSourceLock",
    "SourceLock",
    "file_locks",
    "redis_locks",
]


class SourceLock(Protocol):
    """The hold on one source's sync; taken without waiting, released by whoever took it.

    It may be taken in one thread and released in another (a request takes it, the
    sync's thread lets it go).
    """

    def acquire(self) -> bool:
        """Take the lock if free; returns whether taken."""
        ...

    def release(self) -> None:
        """Let it go (nothing happens if it is not held here)."""
        ...

    def held(self) -> bool:
        """Whether someone (here or elsewhere) holds it now."""
        ...


LockFactory = Callable[[str, str], SourceLock]
"""``(tenant_id, source) -> SourceLock``."""


class FileSourceLock:
    """A lock file shared by the processes of one data folder."""

    def __init__(self, path: Path) -> None:
        """Lock ``path`` (created on first use)."""
        self._lock = FileLock(path, thread_local=False)

    def acquire(self) -> bool:
        """Take the lock file without waiting."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        """Let the lock file go."""
        if self._lock.is_locked:
            self._lock.release()

    def held(self) -> bool:
        """Whether a process holds the lock file (taken and let go at once to find out)."""
        if self._lock.is_locked:
            return True
        probe = FileLock(self._lock.lock_file, thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        return False


def file_locks(folder: Path) -> LockFactory:
    """Lock files ``sync-<id>.lock`` in ``folder``, one per tenant and source."""

    def lock(tenant_id: str, source: str) -> SourceLock:
        return FileSourceLock(folder / f"sync-{stable_id(tenant_id, source)}.lock")

    return lock


class RedisSourceLock:
    """redis-py's ``Lock`` with a TTL, renewed by a thread while held.

    A holder that dies stops renewing: the lock lapses ``ttl_s`` later and another
    replica may sync the source.
    """

    def __init__(self, client: Any, key: str, *, ttl_s: float = 60.0) -> None:
        """Lock ``key`` on ``client`` (a synchronous ``redis.Redis``)."""
        from redis.lock import Lock

        self._client, self._key, self._ttl_s = client, key, ttl_s
        self._lock = Lock(client, key, timeout=ttl_s, blocking=False, thread_local=False)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the key if free and start renewing it."""
        if not self._lock.acquire(blocking=False):
            return False
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="source-lock", daemon=True)
        self._renewer.start()
        return True

    def _renew(self) -> None:
        from redis.exceptions import LockError, RedisError

        while not self._stop.wait(self._ttl_s / 3):
            try:
                self._lock.reacquire()
            except (LockError, RedisError):  # lost, or Redis is away: retried next round
                continue

    def release(self) -> None:
        """Stop renewing and delete the key if it is still ours."""
        from redis.exceptions import LockError

        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        try:
            self._lock.release()
        except LockError:  # lapsed, or never taken: nothing of ours to delete
            pass

    def held(self) -> bool:
        """Whether any replica holds the key."""
        return bool(self._client.exists(self._key))


def redis_locks(client: Any, *, ttl_s: float = 60.0) -> LockFactory:
    """Redis locks ``ragent:source-sync:<id>``, one per tenant and source, on ``client``."""

    def lock(tenant_id: str, source: str) -> SourceLock:
        key = f"ragent:source-sync:{stable_id(tenant_id, source)}"
        return RedisSourceLock(client, key, ttl_s=ttl_s)

    return lock
