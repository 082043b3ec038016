"""Retention of thread state: old checkpoints pruned, idle threads deleted, in short steps.

Every turn adds checkpoints (one per graph step) and none was ever removed, so the
checkpoint store grew without bound. A sweep walks the threads of the checkpointer in
steps of ``checkpoint.retention.batch``:

- a thread whose newest checkpoint is older than ``thread_ttl_s`` is deleted, with its
  writes (and, through ``forget``, its entry in the server's thread list);
- every other thread keeps its ``keep_checkpoints`` newest checkpoints per namespace,
  with their writes. The newest checkpoint holds the whole state, and the writes of a
  run paused for approval belong to it, so a thread still answers and resumes; only
  time travel to a pruned checkpoint is gone.

Checkpoint ids are LangGraph's UUIDv6, which sort by time, so "older than" is a string
comparison with the id of the cut-off time. On SQLite a step is one job on the saver's
own thread; on Redis, a ``SCAN`` page of the latest-checkpoint pointers and the saver's
own ``adelete_thread`` and ``aprune``. Neither blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.base.id import UUID

from app.config.memory import RetentionSettings
from app.memory.sqlite_saver import ThreadedSqliteSaver

__all__ = ["SweepReport", "cut_off_id", "run_periodically", "sweep"]

log = logging.getLogger("ragent.retention")

_GREGORIAN_OFFSET = 0x01B21DD213814000
"""100 ns intervals from 1582-10-15 (UUID time) to 1970-01-01."""


@dataclass
class SweepReport:
    """What one sweep did."""

    threads: int = 0
    """Threads looked at."""
    pruned: int = 0
    """Threads whose older checkpoints were removed."""
    deleted: list[str] = field(default_factory=list)
    """Checkpoint keys of the idle threads deleted."""


def cut_off_id(before: float) -> str:
    """Return the smallest checkpoint id of Unix time ``before``: older ids sort before it."""
    stamp = int(before * 10_000_000) + _GREGORIAN_OFFSET
    value = ((stamp >> 12) & 0xFFFFFFFFFFFF) << 80 | (stamp & 0x0FFF) << 64
    return str(UUID(int=value, version=6))


Step = tuple[list[str], int, int, str | None]
"""Deleted threads, threads pruned, threads seen, and the next cursor (None: done)."""


async def _redis_step(
    saver: Any, cursor: str, limit: int, *, keep: int | None, idle_before: str | None
) -> Step:
    prefix = f"{saver._checkpoint_prefix}_latest:"
    suffix = ":__empty__"  # the root namespace ("" as the saver stores it)
    next_cursor, keys = await saver._redis.scan(
        int(cursor or 0), match=f"{prefix}*{suffix}", count=limit
    )
    names = [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
    pointers = await saver._redis.mget(names) if names else []
    deleted: list[str] = []
    pruned = 0
    for name, pointer in zip(names, pointers, strict=True):
        if pointer is None:  # deleted meanwhile
            continue
        thread_id = name[len(prefix) : -len(suffix)]
        newest = (pointer.decode() if isinstance(pointer, bytes) else str(pointer)).rsplit(":")[-1]
        if idle_before is not None and newest < idle_before:
            again = await saver._redis.get(name)  # a turn that has just written keeps it
            if again is not None and again != pointer:
                continue
            await saver.adelete_thread(thread_id)
            deleted.append(thread_id)
        elif keep is not None:
            await saver.aprune([thread_id], keep_last=keep)
            pruned += 1
    done = int(next_cursor) == 0
    return deleted, pruned, len(names), None if done else str(int(next_cursor))


async def _step(
    saver: BaseCheckpointSaver[str],
    cursor: str,
    settings: RetentionSettings,
    idle_before: str | None,
) -> Step | None:
    keep = settings.keep_checkpoints
    if isinstance(saver, ThreadedSqliteSaver):
        return await saver.asweep(cursor, settings.batch, keep=keep, idle_before=idle_before)
    if type(saver).__name__ == "AsyncRedisSaver":
        return await _redis_step(saver, cursor, settings.batch, keep=keep, idle_before=idle_before)
    return None


async def sweep(
    saver: BaseCheckpointSaver[str],
    settings: RetentionSettings,
    *,
    now: float | None = None,
    forget: Callable[[str], Awaitable[None]] | None = None,
) -> SweepReport:
    """Prune every thread's old checkpoints and delete idle threads, step by step.

    Args:
        saver: The checkpointer (SQLite or Redis; any other is left alone).
        settings: ``checkpoint.retention``.
        now: The time idleness is measured from (default: now).
        forget: Called with the checkpoint key of each thread deleted.

    Returns:
        What was done.
    """
    report = SweepReport()
    ttl = settings.thread_ttl_s
    idle_before = None if ttl is None else cut_off_id((now or time.time()) - ttl)
    cursor: str | None = ""
    while cursor is not None:
        step = await _step(saver, cursor, settings, idle_before)
        if step is None:
            log.info("retention: %s is not pruned", type(saver).__name__)
            break
        deleted, pruned, seen, cursor = step
        report.deleted += deleted
        report.pruned += pruned
        report.threads += seen
        if forget is not None:
            for key in deleted:
                await forget(key)
        await asyncio.sleep(0)  # between steps, the loop serves requests
    return report


async def run_periodically(
    saver: BaseCheckpointSaver[str],
    settings: RetentionSettings,
    *,
    forget: Callable[[str], Awaitable[None]] | None = None,
    claim: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Sweep every ``interval_s`` until cancelled.

    ``claim`` returning False skips a pass (another process runs it). A failed pass is
    logged and tried again at the next interval.
    """
    while True:
        await asyncio.sleep(settings.interval_s)
        if settings.keep_checkpoints is None and settings.thread_ttl_s is None:
            continue
        try:
            if claim is not None and not await claim():
                continue
            report = await sweep(saver, settings, forget=forget)
            log.info(
                "retention: %d threads, %d pruned, %d idle deleted",
                report.threads,
                report.pruned,
                len(report.deleted),
            )
        except Exception as exc:  # noqa: BLE001 - the server must go on; next pass retries
            log.warning("retention pass failed: %s", type(exc).__name__)
