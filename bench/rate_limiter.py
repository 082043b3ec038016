"""The request-rate limiter (GCRA token bucket) next to the ``limits`` library's strategies.

``server.rate_limit`` with ``server.rate_burst`` is a token bucket: ``burst`` requests at
once, then one every ``period / amount``. The ``limits`` library (already used for tool
rate limits) offers fixed windows, moving windows and sliding-window counters. This prints,
for the same ``30 per 3 seconds`` limit on one key:

- refill: after 30 requests at once, how many of 30 more sent over the next 1.5 s each admits;
- memory: bytes held for 1,000 keys that each used their whole ``120/minute`` allowance;
- time per check in this process (asyncio, as the server calls it) and, with
  ``--redis``, against a real Redis started here (one round trip each: a Lua script).

    .venv/bin/python bench/rate_limiter.py [--checks 20000] [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.server.shared_state import MemoryState, RedisState, SharedState  # noqa: E402

STRATEGIES: dict[str, type[RateLimiter]] = {
    "limits fixed window": FixedWindowRateLimiter,
    "limits moving window": MovingWindowRateLimiter,
    "limits sliding window counter": SlidingWindowCounterRateLimiter,
}
Check = Callable[[str], Awaitable[bool]]


def gcra_check(state: SharedState, limit: str) -> Check:
    item = parse(limit)
    interval = item.get_expiry() / item.amount

    async def check(key: str) -> bool:
        return (await state.take(key, interval, item.amount))[0]

    return check


def limits_check(strategy: type[RateLimiter], storage: Storage, limit: str) -> Check:
    limiter = strategy(storage)
    item = parse(limit)

    async def check(key: str) -> bool:
        return await limiter.hit(item, key)

    return check


def in_memory(strategy: type[RateLimiter], limit: str) -> Check:
    return limits_check(strategy, MemoryStorage(), limit)


async def refill(check: Check) -> tuple[int, int]:
    """Admitted of 30 at once, then of 30 sent 50 ms apart."""
    burst = sum([await check("k") for _ in range(30)])
    later = 0
    for _ in range(30):
        await asyncio.sleep(0.05)
        later += await check("k")
    return burst, later


async def memory(make: Callable[[], Check]) -> int:
    tracemalloc.start()
    check = make()
    base = tracemalloc.get_traced_memory()[0]
    for k in range(1000):
        for _ in range(120):
            await check(f"key{k}")
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used


async def per_check_us(check: Check, n: int) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for i in range(n // 5):
            await check(f"key{i % 500}")
        rounds.append((time.perf_counter() - started) / (n // 5) * 1e6)
    return statistics.median(rounds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--redis", action="store_true", help="also time a real Redis")
    args = parser.parse_args()
    limit, big = "30 per 3 seconds", "120/minute"
    makers: dict[str, Callable[[str], Check]] = {
        "ragent GCRA (burst = amount)": lambda lim: gcra_check(MemoryState(), lim),
        **{name: partial(in_memory, strategy) for name, strategy in STRATEGIES.items()},
    }
    print(
        f"{'in this process':34} {'30 at once':>10} {'then 30/1.5s':>12} {'1k keys':>9} {'us':>7}"
    )
    for name, make in makers.items():
        burst, later = await refill(make(limit))
        used = await memory(partial(make, big))
        us = await per_check_us(make(big), args.checks)
        print(f"{name:34} {burst:>10} {later:>12} {used / 1e6:>7.2f}MB {us:>7.1f}")
    if args.redis:
        from tests.servers import redis_server

        with redis_server() as server:
            print(f"\n{'Redis (one round trip each)':34} {'us':>7}")
            state = RedisState(server.url)
            print(
                f"{'ragent GCRA (Lua)':34} {await per_check_us(gcra_check(state, big), 2000):>7.1f}"
            )
            await state.close()
            for i, (name, strategy) in enumerate(STRATEGIES.items()):
                storage = RedisStorage(
                    f"async+{server.url}", implementation="redispy", key_prefix=f"s{i}"
                )
                us = await per_check_us(limits_check(strategy, storage, big), 2000)
                print(f"{name:34} {us:>7.1f}")


if __name__ == "__main__":
    asyncio.run(main())
