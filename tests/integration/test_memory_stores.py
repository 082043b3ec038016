"""Long-term memory on every store: isolation between users and tenants, recall, delete,
retention and the per-user cap. SQLite always runs; Redis runs on a real server (Redis 8
with RediSearch and RedisJSON, whose namespace matching is loose; see the pin tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.memory.longterm import MemoryBank
from app.memory.store import open_store
from app.settings import Settings
from app.tools.ratelimit import RateLimiter
from tests.fakes import HashEmbedder
from tests.servers import RedisServer, redis_server

# Users whose raw ids are prefixes, stems or case variants of each other, and tenants too.
USERS = ("run", "runner", "running", "Alice", "alice", "the")
TENANTS = ("acme", "acme-eu")


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(
    params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def bank(
    backend: str, settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MemoryBank]:
    settings = settings.model_copy(deep=True)
    settings.memory.backend = backend  # type: ignore[assignment]
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        settings.memory.redis_url = server.url
        server_flush(server)
    async with open_store(settings, HashEmbedder()) as store:
        yield MemoryBank(store, settings.memory)


def server_flush(server: RedisServer) -> None:
    import redis as redis_client

    client = redis_client.Redis.from_url(server.url)
    try:
        for key in client.scan_iter("store*"):
            client.delete(key)
    finally:
        client.close()


async def test_no_memory_crosses_users_or_tenants(bank: MemoryBank) -> None:
    for tenant in TENANTS:
        for user in USERS:
            await bank.remember(tenant, user, f"{user} of {tenant} likes green tea")
    for tenant in TENANTS:
        for user in USERS:
            mine = [f"{user} of {tenant} likes green tea"]
            assert [m.text for m in await bank.list(tenant, user)] == mine
            recalled = await bank.recall(tenant, user, "who likes green tea", k=10)
            assert [m.text for m in recalled] == mine


async def test_recall_ranks_by_relevance(bank: MemoryBank) -> None:
    for fact in (
        "The user's locker code is 4512.",
        "The user prefers metric units.",
        "The user's dog is called Rex.",
    ):
        await bank.remember("acme", "run", fact)
    await bank.remember("acme", "runner", "The runner's locker code is 9999.")
    best = await bank.recall("acme", "run", "what is my locker code", k=2)
    assert best[0].text == "The user's locker code is 4512."
    assert best[0].score is not None and best[0].score > (best[1].score or 0)
    assert all("9999" not in m.text for m in best)


async def test_the_same_fact_is_one_memory(bank: MemoryBank) -> None:
    await bank.remember("acme", "run", "The user prefers tea.")
    await bank.remember("acme", "run", "the user   prefers TEA.")
    assert len(await bank.list("acme", "run")) == 1


async def test_delete_touches_only_its_owner(bank: MemoryBank) -> None:
    mine = await bank.remember("acme", "run", "The user prefers tea.")
    theirs = await bank.remember("acme", "runner", "The user prefers tea.")
    assert mine.id != theirs.id
    assert not await bank.delete("acme", "runner", mine.id)  # not runner's memory
    assert await bank.delete("acme", "run", mine.id)
    assert await bank.list("acme", "run") == []
    assert [m.id for m in await bank.list("acme", "runner")] == [theirs.id]
    assert await bank.clear("acme", "runner") == 1
    assert await bank.list("acme", "runner") == []


async def test_memories_past_their_retention_are_forgotten(bank: MemoryBank) -> None:
    await bank.remember("acme", "run", "The user prefers tea.")
    bank.settings = bank.settings.model_copy(update={"ttl_days": 0.5 / 86400})  # half a second
    await asyncio.sleep(1.1)
    assert await bank.list("acme", "run") == []
    assert await bank.recall("acme", "run", "tea") == []


async def test_each_user_keeps_at_most_max_per_user(bank: MemoryBank) -> None:
    bank.settings = bank.settings.model_copy(update={"max_per_user": 3})
    for i in range(5):
        await bank.remember("acme", "run", f"Fact number {i} about the user.")
        await asyncio.sleep(1.05)  # distinct update times (the stores keep seconds)
    kept = [m.text for m in await bank.list("acme", "run")]
    assert kept == [f"Fact number {i} about the user." for i in (4, 3, 2)]


@pytest.mark.integration
async def test_redis_rate_limits_are_shared_by_replicas(redis: RedisServer) -> None:
    first = RateLimiter(redis.url, "3/minute", {})
    second = RateLimiter(redis.url, "3/minute", {})  # another process of the deployment
    results = [await limiter.acquire("t", "u", "calculator") for limiter in (first, second) * 2]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and "rate limit reached for all tools" in results[3]
    assert await first.acquire("t", "other", "calculator") is None
