"""Short-lived shared state of the API: records with a TTL and append-only event logs.

:class:`MemoryState` keeps them in this process (one replica); :class:`RedisState` keeps
them in Redis, so every replica sees the same idempotency records, stream events and
jobs. Both implement :class:`SharedState`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Claim", "MemoryState", "RedisState", "SharedState", "open_state"]

_MAX_RECORDS = 100_000
"""MemoryState keeps at most this many records and logs (oldest dropped first)."""

_BLOCK_S = 2.0
"""Longest single blocking read on Redis: well under the client's socket timeout (5 s)."""


class Claim(Protocol):
    """An exclusive hold on a key, for ``ttl_s`` after it was taken or last renewed.

    It belongs to whoever took it (a random token): a holder that lost it, because it
    expired and someone else took the key, can neither renew nor release the new one.
    """

    @property
    def token(self) -> str:
        """The holder's token: the key's value (as :meth:`SharedState.get` reads it) while held."""
        ...

    async def acquire(self) -> bool:
        """Take the key if nobody holds it; returns whether taken."""
        ...

    async def renew(self) -> bool:
        """Restart the TTL; returns False when this holder no longer holds the key."""
        ...

    async def release(self) -> None:
        """Let the key go, if this holder still holds it."""
        ...


class SharedState(Protocol):
    """Records with a TTL and event logs, per deployment."""

    async def get(self, key: str) -> str | None:
        """Return a record, or None when absent or expired."""
        ...

    async def set(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        """Store a record; with ``only_new``, only when absent (returns whether stored)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove a record."""
        ...

    async def append(self, log: str, events: Sequence[tuple[int, str]], ttl_s: float) -> None:
        """Append events ``(seq, data)`` (seq 1, 2, ...) to a log, in one write.

        The log expires ``ttl_s`` after this write.
        """
        ...

    async def read(self, log: str, after: int, wait_s: float) -> list[tuple[int, str]]:
        """Return the events after ``after``, waiting up to ``wait_s`` for one to come."""
        ...

    async def take(self, key: str, interval_s: float, burst: int) -> tuple[bool, float, int]:
        """Take one token from a bucket: ``(allowed, retry_after_s, remaining)``."""
        ...

    def claim(self, key: str, ttl_s: float) -> Claim:
        """An exclusive hold on ``key`` that lapses ``ttl_s`` after its last renewal."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# Not the `limits` library (which app/tools/ratelimit.py uses for tool calls): it has fixed
# windows, moving windows and sliding-window counters, but no token bucket, so neither
# server.rate_burst nor a steady refill. bench/rate_limiter.py, "30 per 3 seconds": after 30
# requests at once, GCRA admits 15 of 30 more sent over the next 1.5 s; limits' fixed and
# moving windows 0, its sliding-window counter 0 to 13 (where its clock-aligned window falls).
# For 1,000 keys at 120/minute GCRA holds 0.10 MB, the moving window 17.6 MB. In this process
# a check takes 0.8 us (p50 of runs at load 4-5) against 2.8 us and more; on Redis each is
# one round trip.
def gcra(tat: float, now: float, interval_s: float, burst: int) -> tuple[bool, float, float, int]:
    """One request through a token bucket, in its GCRA form (theoretical arrival time).

    A bucket of ``burst`` tokens refilled by one every ``interval_s`` admits a request
    at ``now`` unless its theoretical arrival time is more than ``burst`` intervals
    ahead. Returns ``(allowed, new_tat, retry_after_s, remaining)``.
    """
    tat = max(tat, now)
    new_tat = tat + interval_s
    allow_at = new_tat - burst * interval_s
    if now < allow_at:
        return False, tat, allow_at - now, 0
    return True, new_tat, 0.0, max(0, int((now - allow_at) / interval_s))


@dataclass
class _Log:
    events: list[tuple[int, str]] = field(default_factory=list)
    expires: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryState:
    """Shared state in this process only."""

    def __init__(self) -> None:
        """Start empty."""
        self._records: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        self._buckets: dict[str, float] = {}

    def _sweep(self) -> None:
        now = time.monotonic()
        while len(self._records) > _MAX_RECORDS:
            self._records.popitem(last=False)
        while len(self._logs) > _MAX_RECORDS:
            self._logs.popitem(last=False)
        for key in [k for k, (_, exp) in list(self._records.items())[:64] if exp < now]:
            del self._records[key]
        for key in [k for k, log in list(self._logs.items())[:64] if log.expires < now]:
            del self._logs[key]

    async def get(self, key: str) -> str | None:
        """Return a record."""
        found = self._records.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    async def set(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        """Store a record."""
        if only_new and await self.get(key) is not None:
            return False
        self._records[key] = (value, time.monotonic() + ttl_s)
        self._records.move_to_end(key)
        self._sweep()
        return True

    async def delete(self, key: str) -> None:
        """Remove a record."""
        self._records.pop(key, None)

    async def append(self, log: str, events: Sequence[tuple[int, str]], ttl_s: float) -> None:
        """Append events and wake the readers."""
        entry = self._logs.get(log)
        if entry is None:
            self._sweep()
            entry = self._logs[log] = _Log()
        entry.events.extend(events)
        entry.expires = time.monotonic() + ttl_s
        entry.changed.set()
        entry.changed = asyncio.Event()

    async def read(self, log: str, after: int, wait_s: float) -> list[tuple[int, str]]:
        """Return the events after ``after``, waiting for one if none is there yet."""
        entry = self._logs.get(log)
        if entry is None:  # the run has not written yet
            entry = self._logs[log] = _Log(expires=time.monotonic() + 60)
        newer = [e for e in entry.events[max(after - 1, 0) :] if e[0] > after]
        if newer or wait_s <= 0:
            return newer
        changed = entry.changed
        try:
            await asyncio.wait_for(changed.wait(), wait_s)
        except TimeoutError:
            return []
        return [e for e in entry.events if e[0] > after]

    async def take(self, key: str, interval_s: float, burst: int) -> tuple[bool, float, int]:
        """Take one token from an in-process bucket."""
        now = time.monotonic()
        allowed, tat, retry, remaining = gcra(self._buckets.get(key, now), now, interval_s, burst)
        self._buckets[key] = tat
        if len(self._buckets) > _MAX_RECORDS:  # idle buckets are full again: forget them
            self._buckets = {k: v for k, v in self._buckets.items() if v > now}
        return allowed, retry, remaining

    def claim(self, key: str, ttl_s: float) -> Claim:
        """A hold on a record of this process."""
        return _MemoryClaim(self, key, ttl_s)

    async def close(self) -> None:
        """Nothing to release."""


class _MemoryClaim:
    """A claim on a :class:`MemoryState` record whose value is the holder's token."""

    def __init__(self, state: MemoryState, key: str, ttl_s: float) -> None:
        self._state, self._key, self._ttl_s = state, key, ttl_s
        self._token = uuid.uuid4().hex

    @property
    def token(self) -> str:
        return self._token

    async def acquire(self) -> bool:
        return await self._state.set(self._key, self._token, self._ttl_s, only_new=True)

    async def renew(self) -> bool:
        if await self._state.get(self._key) != self._token:
            return False
        return await self._state.set(self._key, self._token, self._ttl_s)

    async def release(self) -> None:
        if await self._state.get(self._key) == self._token:
            await self._state.delete(self._key)


class _RedisClaim:
    """A claim as redis-py's ``Lock``: a token, compare-and-pexpire and compare-and-delete."""

    def __init__(self, client: Any, key: str, ttl_s: float) -> None:
        from redis.asyncio.lock import Lock

        self._lock = Lock(client, key, timeout=ttl_s, blocking=False, thread_local=False)

    @property
    def token(self) -> str:
        token = self._lock.local.token  # bytes, set by acquire
        return token.decode() if isinstance(token, bytes) else str(token)

    async def acquire(self) -> bool:
        return bool(await self._lock.acquire(blocking=False))

    async def renew(self) -> bool:
        from redis.exceptions import LockError

        try:
            await self._lock.reacquire()
        except LockError:  # expired, taken by another, or never held
            return False
        return True

    async def release(self) -> None:
        from redis.exceptions import LockError

        try:
            await self._lock.release()
        except LockError:  # no longer ours: leave it to its new holder
            pass


# GCRA in one atomic step; the time comes from the Redis server, so replicas agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, tostring(allow_at - now), 0}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0', math.floor((now - allow_at) / interval)}
"""


class RedisState:
    """Shared state in Redis: strings, streams with our sequence numbers as ids, GCRA."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``."""
        from redis.asyncio import Redis

        self._r: Any = Redis.from_url(url, decode_responses=True)
        self._take = self._r.register_script(_TAKE)

    async def get(self, key: str) -> str | None:
        """Return a record."""
        value = await self._r.get(f"ragent:{key}")
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_s: float, *, only_new: bool = False) -> bool:
        """Store a record."""
        done = await self._r.set(f"ragent:{key}", value, px=int(ttl_s * 1000), nx=only_new)
        return bool(done)

    async def delete(self, key: str) -> None:
        """Remove a record."""
        await self._r.delete(f"ragent:{key}")

    async def append(self, log: str, events: Sequence[tuple[int, str]], ttl_s: float) -> None:
        """XADD each with id ``0-<seq>`` (readers resume from a sequence), in one round trip."""
        pipe = self._r.pipeline(transaction=False)
        for seq, data in events:
            pipe.xadd(f"ragent:log:{log}", {"d": data}, id=f"0-{seq}")
        pipe.pexpire(f"ragent:log:{log}", int(ttl_s * 1000))
        await pipe.execute()

    async def read(self, log: str, after: int, wait_s: float) -> list[tuple[int, str]]:
        """XREAD after ``0-<after>``, waiting up to ``wait_s`` for an event.

        The wait is made of blocking reads of at most ``_BLOCK_S`` each: one longer than
        the client's socket timeout (5 s) would fail with a timeout instead of returning
        empty.
        """
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            block = max(1, int(min(left, _BLOCK_S) * 1000)) if left > 0 else None
            found = await self._r.xread({f"ragent:log:{log}": f"0-{after}"}, block=block)
            events: list[tuple[int, str]] = []
            for _, entries in found or []:
                events.extend((int(eid.split("-")[1]), fields["d"]) for eid, fields in entries)
            if events or block is None or time.monotonic() >= deadline:
                return events

    async def take(self, key: str, interval_s: float, burst: int) -> tuple[bool, float, int]:
        """Take one token from a bucket shared by every replica."""
        allowed, retry, remaining = await self._take(
            keys=[f"ragent:bucket:{key}"], args=[interval_s, burst]
        )
        return bool(allowed), float(retry), int(remaining)

    def claim(self, key: str, ttl_s: float) -> Claim:
        """A hold on ``ragent:<key>`` that every replica sees."""
        return _RedisClaim(self._r, f"ragent:{key}", ttl_s)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._r.aclose()


def open_state(redis_url: str | None) -> SharedState:
    """Return the deployment's shared state: Redis when ``server.redis_url`` is set."""
    return RedisState(redis_url) if redis_url else MemoryState()
