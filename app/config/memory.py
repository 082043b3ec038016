"""The ``checkpoint`` and ``memory`` sections: thread state and long-term memory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.config.section import Section

__all__ = ["CheckpointSettings", "MemorySettings"]


class CheckpointSettings(Section):
    """Where thread state is checkpointed."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://localhost:6379/0"
    durability: Literal["exit", "async", "sync"] = "exit"
    """When a turn's state is written (LangGraph's durability). ``exit``: once, when the
    turn ends, fails or pauses for approval, so finished turns and pending approvals
    survive a restart, and a process that dies mid-turn loses that turn only (the client
    sees an error and asks again). ``async``/``sync`` also write after every step, which
    cost about a fifth of a turn's CPU here."""


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
