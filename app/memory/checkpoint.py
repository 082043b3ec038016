"""Checkpointer factory: SQLite in the embedded profile, Redis in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver

from app.settings import Settings

__all__ = ["open_checkpointer"]


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Open the configured checkpointer for the lifetime of the context.

    Args:
        settings: Selects ``checkpoint.backend``: ``sqlite`` stores
            ``<data_dir>/checkpoints.sqlite``; ``redis`` uses ``checkpoint.redis_url``
            (Redis with the RediSearch and RedisJSON modules).

    Yields:
        A ready checkpointer; its connections close when the context exits.
    """
    if settings.checkpoint.backend == "redis":
        from langgraph.checkpoint.redis.aio import AsyncRedisSaver

        async with AsyncRedisSaver.from_conn_string(settings.checkpoint.redis_url) as saver:
            await saver.asetup()
            yield saver
    else:
        from app.memory.sqlite_saver import open_sqlite_saver

        # Opened off the event loop: a blocking call there stalls every other request.
        async with open_sqlite_saver(settings.data_dir / "checkpoints.sqlite") as saver:
            yield saver
