"""Checkpointer factory: SQLite in the embedded profile, Redis in production."""

from __future__ import annotations

import asyncio
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
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        # Off the event loop: a blocking call there stalls every other request.
        await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
        path = settings.data_dir / "checkpoints.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
