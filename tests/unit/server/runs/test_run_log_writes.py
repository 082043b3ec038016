"""A streamed run writes the events that come while a write is on its way in one write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

from app.server.runs.streams import DONE, RunManager
from app.server.shared_state import MemoryState


class SlowState(MemoryState):
    """The in-process state, with each log write taking a network round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[int]] = []

    async def append(self, log: str, events: Sequence[tuple[int, str]], ttl_s: float) -> None:
        self.writes.append([seq for seq, _ in events])
        await asyncio.sleep(0.02)
        await super().append(log, events, ttl_s)


async def _tokens(count: int, fail_after: int | None = None) -> AsyncIterator[str]:
    for i in range(1, count + 1):
        if fail_after is not None and i > fail_after:
            raise RuntimeError("the model went away")
        yield f"token {i}"
        await asyncio.sleep(0)  # a fast model: the next token comes before a write ends


async def _read_all(runs: RunManager, run_id: str) -> list[tuple[str, str]]:
    events = []
    async for raw in runs.follow(run_id):
        event_id, data = raw.decode().strip().split("\n")
        events.append((event_id.removeprefix("id: "), data.removeprefix("data: ")))
    return events


async def test_events_that_come_during_a_write_go_in_the_next_one() -> None:
    state = SlowState()
    runs = RunManager(state, ttl_s=60, silence_s=5)
    run_id = await runs.start("ann", _tokens(10))
    events = await _read_all(runs, run_id)
    assert events == [(f"{run_id}:{i}", f"token {i}") for i in range(1, 11)] + [
        (f"{run_id}:11", DONE)
    ]
    assert state.writes[0] == [1]  # the first token is written the moment it comes
    assert [seq for write in state.writes for seq in write] == list(range(1, 12))
    assert len(state.writes) <= 4, state.writes  # not one round trip per token


async def test_a_failing_run_ends_with_an_error_event_after_what_it_wrote() -> None:
    state = SlowState()
    runs = RunManager(state, ttl_s=60, silence_s=5)
    run_id = await runs.start("ann", _tokens(10, fail_after=3))
    events = await _read_all(runs, run_id)
    assert [data for _, data in events[:3]] == ["token 1", "token 2", "token 3"]
    assert json.loads(events[3][1])["error"]["code"] == "run_failed"
    assert events[4] == (f"{run_id}:5", DONE)
    assert [event_id for event_id, _ in events] == [f"{run_id}:{i}" for i in range(1, 6)]


class FlakyState(MemoryState):
    """The second log write fails, as when the connection to Redis drops."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def append(self, log: str, events: Sequence[tuple[int, str]], ttl_s: float) -> None:
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("the state store went away")
        await asyncio.sleep(0.01)
        await super().append(log, events, ttl_s)


async def test_a_failed_write_ends_the_stream_and_stops_the_run() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                yield "token"
                await asyncio.sleep(0.001)
        finally:
            stopped.set()

    runs = RunManager(FlakyState(), ttl_s=60, silence_s=5)
    run_id = await runs.start("ann", endless())
    events = await _read_all(runs, run_id)
    assert events[0] == (f"{run_id}:1", "token")
    assert json.loads(events[1][1])["error"]["code"] == "run_failed"
    assert events[2] == (f"{run_id}:3", DONE) and len(events) == 3
    await asyncio.wait_for(stopped.wait(), 5)  # the run was cancelled, not left going


class CountingState(SlowState):
    """Counts the reads of a run's log."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, log: str, after: int, wait_s: float) -> list[tuple[int, str]]:
        self.reads += 1
        return await super().read(log, after, wait_s)


async def test_a_reader_in_the_running_process_is_handed_the_events_without_reading_the_log() -> (
    None
):
    state = CountingState()
    runs = RunManager(state, ttl_s=60, silence_s=5)
    elsewhere = RunManager(state, ttl_s=60, silence_s=5)  # another worker on the same store
    run_id = await runs.start("ann", _tokens(10))
    here, there = await asyncio.gather(_read_all(runs, run_id), _read_all(elsewhere, run_id))
    expected = [(f"{run_id}:{i}", f"token {i}") for i in range(1, 11)] + [(f"{run_id}:11", DONE)]
    assert here == there == expected
    reads_there = state.reads
    assert reads_there > 0  # only the other worker read the log

    assert await _read_all(runs, run_id) == expected  # after the run: from the log
    assert state.reads > reads_there and not runs._live


async def test_a_reader_that_joins_mid_run_gets_the_events_after_its_id() -> None:
    state = CountingState()
    runs = RunManager(state, ttl_s=60, silence_s=5)
    gate = asyncio.Event()

    async def paused() -> AsyncIterator[str]:
        for i in range(1, 4):
            yield f"token {i}"
        await gate.wait()
        yield "token 4"

    run_id = await runs.start("ann", paused())
    while len(runs._live[run_id].events) < 3:
        await asyncio.sleep(0.01)
    reader = asyncio.ensure_future(_collect_after(runs, run_id, 2))
    await asyncio.sleep(0.05)
    gate.set()
    assert await reader == [
        (f"{run_id}:3", "token 3"),
        (f"{run_id}:4", "token 4"),
        (f"{run_id}:5", DONE),
    ]
    assert state.reads == 0


async def _collect_after(runs: RunManager, run_id: str, after: int) -> list[tuple[str, str]]:
    events = []
    async for raw in runs.follow(run_id, after):
        event_id, data = raw.decode().strip().split("\n")
        events.append((event_id.removeprefix("id: "), data.removeprefix("data: ")))
    return events
