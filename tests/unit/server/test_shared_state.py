"""The API's shared state in this process: token buckets, records with a TTL, event logs."""

from __future__ import annotations

import asyncio

import pytest

from app.server.shared_state import MemoryState, gcra


def test_gcra_admits_a_burst_then_one_per_interval() -> None:
    tat, now, interval, burst = 0.0, 100.0, 0.5, 3
    admitted = []
    for _ in range(4):
        allowed, tat, retry, remaining = gcra(tat, now, interval, burst)
        admitted.append((allowed, remaining))
    assert admitted == [(True, 2), (True, 1), (True, 0), (False, 0)]
    _, _, retry, _ = gcra(tat, now, interval, burst)
    assert retry == pytest.approx(0.5)
    allowed, tat, _, _ = gcra(tat, now + 0.5, interval, burst)  # one token refilled
    assert allowed
    assert not gcra(tat, now + 0.5, interval, burst)[0]


def test_gcra_refills_up_to_the_burst_only() -> None:
    allowed, tat, _, remaining = gcra(0.0, 1000.0, 1.0, 5)  # idle for a long time
    assert allowed and remaining == 4 and tat == 1001.0


async def test_buckets_are_per_key() -> None:
    state = MemoryState()
    results = [await state.take("a", 60.0, 2) for _ in range(3)]
    assert [r[0] for r in results] == [True, True, False]
    assert 59 < results[2][1] <= 60
    assert (await state.take("b", 60.0, 2))[0]


async def test_records_expire_and_only_new_refuses_a_present_key() -> None:
    state = MemoryState()
    assert await state.set("k", "1", 60, only_new=True)
    assert not await state.set("k", "2", 60, only_new=True)
    assert await state.get("k") == "1"
    await state.set("short", "x", 0.01)
    await asyncio.sleep(0.02)
    assert await state.get("short") is None
    assert await state.set("short", "y", 60, only_new=True)
    await state.delete("k")
    assert await state.get("k") is None


async def test_a_reader_waits_for_events_and_resumes_after_any_id() -> None:
    state = MemoryState()
    reader = asyncio.create_task(state.read("run", 0, 5))
    await asyncio.sleep(0.01)
    await state.append("run", [(1, "a")], 60)
    assert await reader == [(1, "a")]
    await state.append("run", [(2, "b")], 60)
    await state.append("run", [(3, "c")], 60)
    assert await state.read("run", 1, 0) == [(2, "b"), (3, "c")]
    assert await state.read("run", 3, 0.01) == []
    assert await state.read("run", 0, 0) == [(1, "a"), (2, "b"), (3, "c")]
