"""Run records on a real Redis: a live run on one worker reads as live on another, and a
run whose worker died (its lock lapsed) reads as interrupted there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest

from app.server.runs.records import RunRecord, StateRunRecords
from app.server.runs.streams import DONE, INTERRUPTED, RunManager
from app.server.shared_state import RedisState
from tests.servers import RedisServer, redis_server

pytestmark = pytest.mark.integration

LOCK = "busy:acme/ann/c1"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def _data(runs: RunManager, run_id: str) -> list[str]:
    out = []
    async for raw in runs.follow(run_id):
        if not raw.startswith(b":"):
            out.append(raw.decode().strip().split("\n")[1].removeprefix("data: "))
    return out


async def test_the_lock_holds_the_claims_token(redis: RedisServer) -> None:
    state = RedisState(redis.url)
    try:
        claim = state.claim(LOCK, 5)
        assert await claim.acquire()
        assert await state.get(LOCK) == claim.token
        await claim.release()
        assert await state.get(LOCK) is None
    finally:
        await state.close()


async def test_a_live_run_on_one_worker_is_followed_to_its_end_on_another(
    redis: RedisServer,
) -> None:
    one, two = RedisState(redis.url), RedisState(redis.url)
    try:
        worker = RunManager(one, ttl_s=60, silence_s=60)
        elsewhere = RunManager(two, ttl_s=60, silence_s=60)
        claim = one.claim(LOCK, 5)
        assert await claim.acquire()

        async def slow() -> AsyncIterator[str]:
            for piece in ("a", "b", "c"):
                await asyncio.sleep(0.3)
                yield piece

        run_id = await worker.start(
            "acme/ann", slow(), thread_id="c1", lock=(LOCK, claim.token), on_end=claim.release
        )
        assert await asyncio.wait_for(_data(elsewhere, run_id), 20) == ["a", "b", "c", DONE]
        for _ in range(100):  # the record is marked done just after [DONE] is written
            record = await StateRunRecords(two).get(run_id)
            if record is not None and record.status == "done":
                break
            await asyncio.sleep(0.02)
        assert record is not None and record.status == "done"
        for _ in range(100):
            if await two.get(LOCK) is None:
                break
            await asyncio.sleep(0.02)
        assert await two.get(LOCK) is None
    finally:
        await one.close()
        await two.close()


async def test_a_run_whose_worker_died_reads_as_interrupted_once_its_lock_lapses(
    redis: RedisServer,
) -> None:
    dead, alive = RedisState(redis.url), RedisState(redis.url)
    try:
        lock = "busy:acme/ann/c2"
        claim = dead.claim(lock, 1)  # the dead worker's lock: lapses 1 s after its last renewal
        assert await claim.acquire()
        record = RunRecord(owner="acme/ann", thread_id="c2", lock=lock, token=claim.token)
        await StateRunRecords(dead).put("run_dead", record, 60)
        await dead.append("run_dead", [(1, "a"), (2, "b")], 60)
        await dead.close()  # killed: no more events, no renewal, no release

        runs = RunManager(alive, ttl_s=60, silence_s=60)
        data = await asyncio.wait_for(_data(runs, "run_dead"), 20)
        assert data[:2] == ["a", "b"] and data[-1] == DONE
        assert json.loads(data[2])["error"]["code"] == INTERRUPTED
    finally:
        await alive.close()
