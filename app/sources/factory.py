"""Build the source sync from Settings and the process's engines."""

from __future__ import annotations

from typing import Any

from app.ingest.factory import build_ingestor
from app.resources import Resources
from app.settings import Settings
from app.sources.cursors import Cursors, CursorStore, RedisCursorStore
from app.sources.locks import LockFactory, file_locks, redis_locks
from app.sources.runner import SourceRunner
from app.sources.status import RedisStatusStore, SqliteStatusStore, StatusStore
from app.sources.sync import SourceSync

__all__ = ["build_runner", "build_source_sync", "cursor_store", "status_store"]


def _redis(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.server.redis_url or "")


def status_store(settings: Settings) -> StatusStore:
    """Redis when ``server.redis_url`` is set (every replica sees it), else ``sources.sqlite``."""
    if settings.server.redis_url:
        return RedisStatusStore(_redis(settings))
    return SqliteStatusStore(settings.data_dir / "sources.sqlite")


def cursor_store(settings: Settings) -> Cursors:
    """Redis beside the status when ``server.redis_url`` is set, else ``sources.sqlite``."""
    if settings.server.redis_url:
        return RedisCursorStore(_redis(settings))
    return CursorStore(settings.data_dir / "sources.sqlite")


def build_runner(resources: Resources) -> SourceRunner:
    """A :class:`SourceRunner` on Redis locks and statuses when ``server.redis_url`` is set."""
    settings = resources.settings
    locks = redis_locks(_redis(settings)) if settings.server.redis_url else None
    return SourceRunner(
        sync=build_source_sync(resources, locks=locks), status=status_store(settings)
    )


def build_source_sync(resources: Resources, *, locks: LockFactory | None = None) -> SourceSync:
    """Return a :class:`SourceSync` that chunks as the file pipeline does.

    Args:
        resources: The process's engines and settings.
        locks: The syncs' locks; None: lock files in the data folder.

    Raises:
        SettingsError: The ``ingest`` chunk settings do not fit the embedder.
    """
    files = build_ingestor(resources)
    folder = resources.settings.data_dir
    return SourceSync(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=files.chunk_tokens,
        chunk_overlap=files.chunk_overlap,
        cursors=cursor_store(resources.settings),
        embed_batch=files.embed_batch,
        locks=locks or file_locks(folder),
    )
