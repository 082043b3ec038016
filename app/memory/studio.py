"""The checkpointer factory that ``langgraph.json`` names for ``langgraph dev``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver

from app.memory.checkpoint import open_checkpointer
from app.settings import get_settings

__all__ = ["checkpointer"]


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Yield the configured checkpointer (Redis in production) to the LangGraph server."""
    async with open_checkpointer(get_settings()) as saver:
        yield saver
