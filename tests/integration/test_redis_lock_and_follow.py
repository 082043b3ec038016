"""Conversation locks and cross-worker stream readers on a real Redis: a lock dies with its
holder, a live run keeps it, and a reader outwaits the Redis client's socket timeout."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.server import chat_turns as turns
from app.server.auth import Principal
from app.server.errors import ApiError
from app.server.runs.streams import DONE, RunManager, sse
from app.server.shared_state import RedisState
from app.settings import Settings
from tests.servers import RedisServer, redis_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANN = Principal(key_id="k1", tenant_id="acme", user_id="ann")

# A worker that takes a conversation's lock, says so, and runs "forever" (until killed).
HOLDER = """
import asyncio, sys, types
from app.server.auth import Principal
from app.server.shared_state import RedisState
from app.server.chat_turns import busy
from app.settings import Settings

async def main() -> None:
    services = types.SimpleNamespace(state=RedisState(sys.argv[1]), settings=Settings())
    async with busy(services, Principal(key_id="k1", tenant_id="acme", user_id="ann"), sys.argv[2]):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _services(url: str) -> Any:
    return SimpleNamespace(state=RedisState(url), settings=Settings())


async def _taken(services: Any, thread_id: str) -> bool:
    """Whether a new message on ``thread_id`` would get a 409 now."""
    try:
        async with turns.busy(services, ANN, thread_id):
            return False
    except ApiError as exc:
        assert exc.status == 409
        return True


async def test_a_killed_holder_frees_its_conversation_within_seconds(redis: RedisServer) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis.url, "t-killed"], cwd=ROOT, stdout=subprocess.PIPE
    )
    services = _services(redis.url)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 120)
        assert line.strip() == b"held"
        assert await _taken(services, "t-killed")  # the live worker holds it
        holder.kill()  # SIGKILL: no finally, no release
        holder.wait(10)
        killed = time.monotonic()
        while await _taken(services, "t-killed"):
            assert time.monotonic() - killed < 30, "the dead worker's lock still holds"
            await asyncio.sleep(0.25)
        assert time.monotonic() - killed < 12  # the lock's TTL (10 s) and some slack
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
        await services.state.close()


async def test_a_live_run_longer_than_the_ttl_keeps_its_lock(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(turns, "LOCK_TTL_S", 1.0, raising=False)
    one, two = _services(redis.url), _services(redis.url)
    try:
        async with turns.busy(one, ANN, "t-long"):
            for _ in range(6):  # 3 s, three TTLs
                await asyncio.sleep(0.5)
                assert await _taken(two, "t-long")
        assert not await _taken(two, "t-long")  # released on exit, at once
    finally:
        await one.state.close()
        await two.state.close()


async def test_a_lock_lost_to_another_holder_is_not_released_by_the_first(
    redis: RedisServer,
) -> None:
    one, two = RedisState(redis.url), RedisState(redis.url)
    try:
        first = one.claim("busy:acme/ann/t-lost", 0.3)
        assert await first.acquire()
        await asyncio.sleep(0.5)  # lapsed: its holder stopped renewing
        second = two.claim("busy:acme/ann/t-lost", 10)
        assert await second.acquire()
        assert not await first.renew()
        await first.release()  # not its own any more: a no-op
        assert not await two.claim("busy:acme/ann/t-lost", 10).acquire()
        await second.release()
        assert await one.claim("busy:acme/ann/t-lost", 10).acquire()
    finally:
        await one.close()
        await two.close()


async def test_a_follower_on_another_worker_outwaits_the_socket_timeout(
    redis: RedisServer,
) -> None:
    # The run writes through one client (its worker); the follower reads through another.
    writer, reader = RedisState(redis.url), RedisState(redis.url)
    runs = RunManager(reader, ttl_s=60, silence_s=60)
    try:
        await writer.append("run_quiet", [(1, "first")], 60)

        async def later() -> None:
            await asyncio.sleep(6.5)  # the model is silent longer than the 5 s socket timeout
            await writer.append("run_quiet", [(2, "second"), (3, DONE)], 60)

        late = asyncio.create_task(later())
        started = time.monotonic()
        got = [chunk async for chunk in runs.follow("run_quiet")]
        await late
        assert time.monotonic() - started > 6
        assert [c for c in got if not c.startswith(b":")] == [
            sse("run_quiet", 1, "first"),
            sse("run_quiet", 2, "second"),
            sse("run_quiet", 3, DONE),
        ]
    finally:
        await writer.close()
        await reader.close()
