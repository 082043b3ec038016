"""The ``checkpoint`` and ``memory`` sections: thread state and long-term memory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.config.section import Section

__all__ = ["CheckpointSettings", "MemorySettings", "RetentionSettings"]


class RetentionSettings(Section):
    """How long thread state is kept (:mod:`app.memory.retention`)."""

    keep_checkpoints: int | None = Field(default=100, ge=2)
    """Checkpoints kept per thread (and per subgraph namespace), newest first; older ones
    are pruned, with their writes. A turn writes one per graph step (eight for a plain
    question, more with tool calls), so 100 keeps about the last dozen turns for time
    travel; the thread's state is the newest one's, so nothing else is lost. None keeps
    every checkpoint."""
    thread_ttl_s: float | None = Field(default=90 * 86_400, gt=0)
    """A thread idle longer than this (its newest checkpoint older) is deleted with its
    checkpoints, writes and entry in the thread list. None keeps idle threads."""
    interval_s: float = Field(default=3600.0, gt=0)
    """How often ``ragent serve`` runs a pass (one process of all, with Redis)."""
    batch: int = Field(default=200, ge=1, le=10_000)
    """Threads looked at per step of a pass; each step is one short job off the event loop."""


class CheckpointSettings(Section):
    """Where thread state is checkpointed."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://localhost:6379/0"
    durability: Literal["exit", "async", "sync"] = "sync"
    """When a turn's state is written (LangGraph's durability). ``sync`` (the default):
    after every step, each write done before the next step starts, so the user's message
    is on disk before the model is called and a process killed mid-turn loses only the
    step it was in; the next message on the thread closes that turn
    (:mod:`app.server.runs.recovery`). ``async``: the same writes, done while the next step
    runs, so a crash can lose the last of them, the message included. ``exit``: once,
    when the turn ends, fails or pauses for approval: cheapest, but a process that dies
    mid-turn loses the turn and the user's message with it. bench/api.py measured the
    cost of each (bench/README.md, "Crash recovery")."""
    retention: RetentionSettings = RetentionSettings()
    """Pruning of old checkpoints and deletion of idle threads."""


class MemorySettings(Section):
    """Long-term memory per user, and how the running summary is written."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    """``sqlite``: ``<data_dir>/memory.sqlite``; ``redis``: RediSearch and RedisJSON needed."""
    redis_url: str | None = None
    """None: ``checkpoint.redis_url``."""
    extraction: Literal["auto", "llm", "explicit", "off"] = "auto"
    """``explicit``: statements such as "remember that ..."; ``llm`` adds facts the model
    finds; ``auto``: ``llm`` when a generative model is configured."""
    summarizer: Literal["auto", "model", "extractive"] = "auto"
    """Who writes the running summary; ``auto``: the model when it is generative."""
    recall_k: int = Field(default=5, ge=0, le=50)
    min_score: float = Field(default=0.0, ge=-1, le=1)
    """Lowest cosine similarity a recalled memory needs."""
    ttl_days: float | None = Field(default=None, gt=0)
    """Memories not updated for this long are forgotten; None keeps them."""
    max_per_user: int = Field(default=1000, ge=1)
