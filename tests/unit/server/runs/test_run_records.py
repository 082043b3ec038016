"""Run records: a reader of a run that no process runs any more gets a clear end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from app.server.runs.records import RunRecord, SqliteRunRecords, StateRunRecords
from app.server.runs.streams import DONE, INTERRUPTED, RunManager
from app.server.shared_state import MemoryState


async def _read(runs: RunManager, run_id: str, after: int = 0) -> list[tuple[str, str]]:
    events = []
    async for raw in runs.follow(run_id, after):
        if raw.startswith(b":"):
            continue  # keep-alive
        event_id, data = raw.decode().strip().split("\n")
        events.append((event_id.removeprefix("id: "), data.removeprefix("data: ")))
    return events


def _code(data: str) -> str:
    return str(json.loads(data)["error"]["code"])


async def test_sqlite_records_survive_a_reopen_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "server.sqlite"
    records = SqliteRunRecords(path)
    record = RunRecord(owner="t/ann", thread_id="c1", lock="busy:t/ann/c1", token="abc")
    await records.put("run_1", record, 60)
    await records.put("run_old", record, -1)  # already expired
    await records.close()  # the process dies; a new one opens the same file

    reopened = SqliteRunRecords(path)
    try:
        assert await reopened.get("run_1") == record
        assert await reopened.get("run_old") is None
        assert await reopened.get("run_unknown") is None
    finally:
        await reopened.close()


async def test_a_run_left_running_by_a_dead_process_reads_as_interrupted(
    tmp_path: Path,
) -> None:
    # What a restarted process finds: a record that says running, a log that is gone
    # (it lived in the dead process's memory), and nobody holding the lock.
    state = MemoryState()
    records = SqliteRunRecords(tmp_path / "server.sqlite")
    try:
        record = RunRecord(owner="t/ann", thread_id="c1", lock="busy:t/ann/c1", token="dead")
        await records.put("run_x", record, 60)
        runs = RunManager(state, ttl_s=60, silence_s=60, records=records)
        events = await asyncio.wait_for(_read(runs, "run_x", 3), 5)
        assert [i for i, _ in events] == ["run_x:4", "run_x:5"]
        assert _code(events[0][1]) == INTERRUPTED
        assert events[1][1] == DONE
        assert await runs.owner("run_x") == "t/ann"
    finally:
        await records.close()


async def test_a_reader_elsewhere_gets_the_log_then_interrupted_once_the_lock_is_gone() -> None:
    state = MemoryState()
    runs = RunManager(state, ttl_s=60, silence_s=60)
    claim = state.claim("busy:t/ann/c1", 30)
    assert await claim.acquire()
    record = RunRecord(owner="t/ann", thread_id="c1", lock="busy:t/ann/c1", token=claim.token)
    await runs.records.put("run_y", record, 60)
    await state.append("run_y", [(1, "one"), (2, "two")], 60)

    reader = asyncio.create_task(_read(runs, "run_y"))
    await asyncio.sleep(0.2)
    assert not reader.done()  # the lock's holder is alive: the reader waits for more
    await state.delete("busy:t/ann/c1")  # the holder died and its lock lapsed
    events = await asyncio.wait_for(reader, 10)
    assert [d for _, d in events[:2]] == ["one", "two"]
    assert _code(events[2][1]) == INTERRUPTED and events[3] == ("run_y:4", DONE)


async def test_a_finished_run_whose_events_are_gone_says_so() -> None:
    runs = RunManager(MemoryState(), ttl_s=60, silence_s=60)
    await runs.records.put("run_z", RunRecord(owner="t/ann", status="done"), 60)
    events = await asyncio.wait_for(_read(runs, "run_z", 7), 5)
    assert _code(events[0][1]) == "stream_expired" and events[1] == ("run_z:9", DONE)


async def test_a_run_marks_its_record_done_before_it_lets_the_lock_go() -> None:
    state = MemoryState()
    records = StateRunRecords(state)
    runs = RunManager(state, ttl_s=60, silence_s=60, records=records)
    seen: list[str] = []

    async def tokens() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    async def release() -> None:
        record = await records.get(run_id)
        assert record is not None
        seen.append(record.status)

    run_id = await runs.start("t/ann", tokens(), thread_id="c1", on_end=release)
    assert [d for _, d in await _read(runs, run_id)] == ["a", "b", DONE]
    for _ in range(50):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert seen == ["done"]


async def test_a_run_cancelled_by_a_shutdown_ends_its_log_with_interrupted() -> None:
    runs = RunManager(MemoryState(), ttl_s=60, silence_s=60)
    started = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        yield "first"
        started.set()
        await asyncio.sleep(3600)
        yield "never"

    run_id = await runs.start("t/ann", endless())
    await started.wait()
    await runs.close()
    events = await asyncio.wait_for(_read(runs, run_id), 5)
    assert events[0][1] == "first"
    assert _code(events[1][1]) == INTERRUPTED and events[2][1] == DONE


async def test_a_reader_that_gets_done_finds_the_conversation_free() -> None:
    # A client that reads [DONE] and at once sends the conversation's next message must not
    # find it busy: the record says done and the lock is let go before [DONE] goes out, for
    # a reader in the run's process (its tail) and one in another (the shared log) alike.
    state = MemoryState()
    records = StateRunRecords(state)
    runs = RunManager(state, ttl_s=60, silence_s=60, records=records)
    elsewhere = RunManager(state, ttl_s=60, silence_s=60, records=records)
    released = asyncio.Event()
    go = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "a"
        await go.wait()
        yield "b"

    async def release() -> None:
        await asyncio.sleep(0.1)  # a round trip to Redis, say
        released.set()

    async def read_then_check(manager: RunManager) -> list[str]:
        data = []
        async for raw in manager.follow(run_id):
            if raw.startswith(b":"):
                continue
            data.append(raw.decode().split("data: ", 1)[1].strip())
            if data[-1] == DONE:
                assert released.is_set(), "[DONE] went out while the lock was still held"
        return data

    run_id = await runs.start("t/ann", tokens(), thread_id="c1", on_end=release)
    here = asyncio.create_task(read_then_check(runs))
    there = asyncio.create_task(read_then_check(elsewhere))
    await asyncio.sleep(0.1)
    go.set()
    assert await asyncio.wait_for(here, 10) == ["a", "b", DONE]
    assert await asyncio.wait_for(there, 10) == ["a", "b", DONE]
