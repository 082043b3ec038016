"""Per-user and per-tool rate limits: moving windows in process memory or in Redis."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["RateLimiter", "storage_for"]

_Check = tuple[RateLimitItem, tuple[str, ...], str]


@lru_cache(maxsize=8)
def storage_for(uri: str) -> Storage:
    """Return the shared counter storage for ``uri`` (one per process and URI).

    ``memory://`` counts in this process; ``redis://host:port/db`` counts in Redis, shared
    by every process that uses the same server.
    """
    if uri.startswith(("redis://", "rediss://")):
        return RedisStorage(uri, key_prefix="ragent-tools")
    return MemoryStorage()


class RateLimiter:
    """Checks and counts tool calls against a per-user and a per-tool limit.

    Args:
        storage_uri: ``memory://`` or a Redis URL.
        per_user: The limit on all of a user's tool calls together, e.g. ``60/minute``.
        per_tool: Limits per user and tool, by tool name.
    """

    def __init__(self, storage_uri: str, per_user: str, per_tool: Mapping[str, str]) -> None:
        """Parse the limits; the storage is shared with other limiters on the same URI."""
        self._limiter = MovingWindowRateLimiter(storage_for(storage_uri))
        self._per_user: RateLimitItem = parse(per_user)
        self._per_tool: dict[str, RateLimitItem] = {k: parse(v) for k, v in per_tool.items()}

    async def acquire(self, tenant_id: str, user_id: str, tool: str) -> str | None:
        """Count one call if both limits allow it.

        Returns:
            None when the call may go ahead (and it was counted); otherwise a sentence for
            the model that names the limit and when to try again (nothing was counted).
        """
        checks: list[_Check] = [(self._per_user, ("user", tenant_id, user_id), "all tools")]
        if (item := self._per_tool.get(tool)) is not None:
            checks.append((item, ("tool", tenant_id, user_id, tool), f"tool {tool!r}"))
        # Counters may live in Redis: the blocking client runs in a worker thread.
        return await asyncio.to_thread(self._acquire, checks)

    def _acquire(self, checks: list[_Check]) -> str | None:
        for item, ids, what in checks:
            if not self._limiter.test(item, *ids):
                return self._refusal(item, ids, what)
        for item, ids, what in checks:
            if not self._limiter.hit(item, *ids):  # lost a race with another call
                return self._refusal(item, ids, what)
        return None

    def _refusal(self, item: RateLimitItem, ids: tuple[str, ...], what: str) -> str:
        stats = self._limiter.get_window_stats(item, *ids)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return (
            f"Error: rate limit reached for {what} ({item}). Try again in {wait} s, "
            "or answer without this tool."
        )
