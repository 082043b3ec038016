"""The checkpoint config of a conversation: its thread key, recursion limit and durability.

Every run on a thread and every read or write of its checkpoints takes its config from
:func:`thread_config`, so the key a thread is stored under and the limits of its runs
are set here and nowhere else.
"""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig
from langgraph.types import Durability

from app.context import Context
from app.resources import aget_resources

__all__ = [
    "RECURSION_LIMIT",
    "run_durability",
    "thread_config",
    "thread_key",
    "thread_of",
]

RECURSION_LIMIT = 120
"""Graph steps a run may take; above what the largest ``limits.max_tool_steps`` needs.
The tool nodes end a run with a final message before it (``remaining_steps``)."""


def thread_key(ctx: Context, thread_id: str) -> str:
    """Return the checkpoint key of a thread, scoped to its owner.

    Two users who pick the same thread id get different threads, so no one can
    read or continue another user's conversation.
    """
    return f"{ctx.tenant_id}/{ctx.user_id}/{thread_id}"


def thread_config(ctx: Context, thread_id: str) -> RunnableConfig:
    """Return the config of every run on a thread and every read of its checkpoints."""
    return {
        "configurable": {"thread_id": thread_key(ctx, thread_id)},
        "recursion_limit": RECURSION_LIMIT,
    }


def thread_of(config: RunnableConfig) -> str:
    """Return the checkpoint key a run's config names ("" when it names none)."""
    return str(config.get("configurable", {}).get("thread_id", ""))


async def run_durability() -> Durability:
    """When a run's checkpoints are written: ``checkpoint.durability`` (default ``sync``)."""
    return (await aget_resources()).settings.checkpoint.durability
