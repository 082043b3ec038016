"""Streamed runs: events buffered per run, so a client can reconnect and read on.

A streamed run executes in a task of its own, not in the request: it appends each SSE
event to the run's log in :class:`~app.server.shared_state.SharedState` (this process by
default, Redis with ``server.redis_url``), and any number of readers follow the log.
Event ids are ``<run id>:<sequence>``; a reader that sends ``Last-Event-ID`` gets the
events after it, and the model never runs twice. A client that goes away does not stop
the run.

Readers in the process that runs the run (the request that started it, as a rule) are
handed each batch once it is in the log, instead of reading it back: with Redis, that
saved a blocking read per batch. Readers elsewhere, or after the run, read the log.

Each run has a record (:mod:`app.server.runs.records`) that outlives a crash. A reader of
a run whose record says ``running`` while the lock it held is free or someone else's (its
process died) gets what the log kept, a ``turn_interrupted`` error event and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from app.observability.metrics import record_error
from app.retrieval.retriever import RetrievalUnavailable
from app.server.errors import UNAVAILABLE as _UNAVAILABLE
from app.server.errors import ApiError, error_body
from app.server.runs.records import RunRecord, RunRecords, StateRunRecords
from app.server.shared_state import SharedState

__all__ = ["DONE", "INTERRUPTED", "RunManager", "parse_event_id", "sse"]

log = logging.getLogger("ragent.server")

DONE = "[DONE]"
"""The last event of every run, as OpenAI ends its streams."""
# A comment line with no blank line after it: the blank line would end an event, and the
# openai client's SSE decoder, which keeps the last event id, would then read an event with
# empty data and fail to parse it. Alone, the line is ignored and folds into the next event.
_KEEPALIVE = b": keep-alive\n"
_LAST_EVENT_S = 1.0
"""How long a reader waits for [DONE] of a run whose record has just said it ended."""
_POLL_S = 5.0
"""Longest wait on a quiet log before a reader checks that the run still goes on."""
INTERRUPTED = "turn_interrupted"
"""Error code of a run whose process stopped before it ended."""
_INTERRUPTED_MESSAGE = (
    "the turn was interrupted: the server stopped before it ended. The question is kept "
    "in the conversation (GET /v1/threads/<conversation id>); send a new message to go on"
)
_EXPIRED_MESSAGE = "this stream's events are no longer kept; read the conversation instead"


async def _collect(events: AsyncIterator[str], into: list[str], wake: asyncio.Event) -> None:
    """Move ``events`` into ``into`` as they come, waking the writer each time."""
    try:
        async for data in events:
            into.append(data)
            wake.set()
    finally:
        wake.set()


def sse(run_id: str, seq: int, data: str) -> bytes:
    """Encode one event."""
    return f"id: {run_id}:{seq}\ndata: {data}\n\n".encode()


def parse_event_id(value: str) -> tuple[str, int]:
    """Split a ``Last-Event-ID`` into run id and sequence.

    Raises:
        ApiError: 400 when it is not ``<run id>:<sequence>``.
    """
    run_id, _, seq = value.strip().rpartition(":")
    if not run_id.startswith("run_") or not seq.isdigit():
        raise ApiError(400, "Last-Event-ID must be '<run id>:<sequence>'", "invalid_event_id")
    return run_id, int(seq)


class _Tail:
    """The events of a run going on in this process, as they reach its log."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []
        self.changed = asyncio.Event()

    def add(self, batch: list[tuple[int, str]]) -> None:
        self.events.extend(batch)
        self.changed.set()

    def after(self, seq: int) -> list[tuple[int, str]]:
        # Sequences start at 1 and have no gaps, so the events after ``seq`` start at
        # index ``seq``.
        return self.events[seq:]


class RunManager:
    """Starts runs that write to a log, and reads logs back as SSE."""

    def __init__(
        self,
        state: SharedState,
        *,
        ttl_s: float,
        silence_s: float,
        records: RunRecords | None = None,
    ) -> None:
        """Keep events ``ttl_s`` after a run's last one; readers give up after ``silence_s``.

        A run that writes nothing for ``silence_s`` is taken for lost (its process died).
        ``records`` keep each run's record (default: in ``state``).
        """
        self.state = state
        self.records = records or StateRunRecords(state)
        self.ttl_s = ttl_s
        self.silence_s = silence_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: dict[str, _Tail] = {}

    async def start(
        self,
        owner: str,
        events: AsyncIterator[str],
        *,
        thread_id: str = "",
        lock: tuple[str, str] = ("", ""),
        on_end: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Start a run that publishes ``events``; returns its id.

        Create the task inside the request's context (it copies context variables,
        such as the request's view of the engines).

        Args:
            owner: Who may read the run.
            events: The run's SSE payloads.
            thread_id: The conversation it answers.
            lock: ``(key, token)`` of the conversation lock the run holds: while the
                key holds the token, a reader elsewhere takes the run for alive.
            on_end: Awaited once the run's last event and its record are written (the
                lock is released there, so no reader sees a free lock and a run that
                has not ended).
        """
        run_id = f"run_{uuid.uuid4().hex}"
        record = RunRecord(owner=owner, thread_id=thread_id, lock=lock[0], token=lock[1])
        await self.records.put(run_id, record, self.ttl_s)
        self._live[run_id] = _Tail()
        task = asyncio.create_task(self._pump(run_id, events, record, on_end), name=run_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run_id

    async def _pump(
        self,
        run_id: str,
        events: AsyncIterator[str],
        record: RunRecord,
        on_end: Callable[[], Awaitable[None]] | None,
    ) -> None:
        async def ended() -> None:
            try:
                await self.records.put(run_id, replace(record, status="done"), self.ttl_s)
            finally:
                if on_end is not None:
                    await on_end()

        await self._write(run_id, events, ended)

    async def _write(
        self, run_id: str, events: AsyncIterator[str], ended: Callable[[], Awaitable[None]]
    ) -> None:
        """Write the run's events to its log, each batch in one write.

        The run produces events in a task of its own. While one write is on its way (a
        round trip to Redis), the events that come meanwhile gather and go together in
        the next: a fast model no longer waits a round trip per token, and the first
        event is still written the moment it comes.
        """
        tail = self._live[run_id]
        pending: list[str] = []
        wake = asyncio.Event()
        producer = asyncio.create_task(_collect(events, pending, wake))
        # Its failure is reported below; if a failed write ended the loop first, it is
        # still marked as seen, so asyncio does not log it again at garbage collection.
        producer.add_done_callback(lambda task: task.cancelled() or task.exception())
        seq = 0
        try:
            while True:
                await wake.wait()
                wake.clear()
                if pending:
                    batch = [(seq + i, data) for i, data in enumerate(pending, 1)]
                    pending.clear()
                    await self.state.append(run_id, batch, self.ttl_s)
                    tail.add(batch)
                    seq += len(batch)
                if producer.done() and not pending:
                    break
            producer.result()  # the run's own failure, if it failed
        except Exception as exc:  # noqa: BLE001 - the client gets an error event, not a hang
            log.error("run %s failed: %s", run_id, type(exc).__name__)
            record_error("stream", type(exc).__name__)
            seq += 1
            body = (
                error_body(_UNAVAILABLE, "unavailable_error", "search_unavailable")
                if isinstance(exc, RetrievalUnavailable)
                else error_body("the run failed", "server_error", "run_failed")
            )
            failure = [(seq, json.dumps(body))]
            await self.state.append(run_id, failure, self.ttl_s)
            tail.add(failure)
        except asyncio.CancelledError:  # the process is stopping: say so, then end the log
            seq += 1
            stopped = [(seq, json.dumps(_interrupted()))]
            await self.state.append(run_id, stopped, self.ttl_s)
            tail.add(stopped)
            raise
        finally:
            producer.cancel()
            try:
                # The record says done and the lock is free before [DONE] goes out: a
                # client that reads it and sends the next message finds the conversation free.
                try:
                    await ended()
                finally:
                    await self.state.append(run_id, [(seq + 1, DONE)], self.ttl_s)
                    tail.add([(seq + 1, DONE)])
            finally:
                # Readers from now on read the log; those holding the tail read it on.
                del self._live[run_id]

    async def owner(self, run_id: str) -> str | None:
        """Return who started a run, or None when it is unknown or expired."""
        record = await self.records.get(run_id)
        return None if record is None else record.owner

    async def _over(self, run_id: str) -> dict[str, object] | None:
        """Return None while a process runs ``run_id``, else the error its readers end on.

        The error says the run was interrupted (it never ended), or that its events
        are no longer kept (it ended); readers send it once the log has no more events.
        """
        record = await self.records.get(run_id)
        if record is None:  # unknown here: follow the log, as long as events come
            return None
        if record.status == "running":
            if not record.lock or await self.state.get(record.lock) == record.token:
                return None
            return _interrupted()
        return error_body(_EXPIRED_MESSAGE, "invalid_request_error", "stream_expired")

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[bytes]:
        """Yield a run's events after sequence ``after`` as SSE, until its last one.

        A run that no process runs any more, and whose log holds no ``[DONE]``, ends
        with a ``turn_interrupted`` error event (its process died mid-run).
        """
        tail = self._live.get(run_id)
        quiet_since = time.monotonic()
        # Checked once before the first read, then only after a read came back empty.
        over = None if tail is not None else await self._over(run_id)
        while True:
            if tail is None:
                events = await self.state.read(run_id, after, 0 if over else _POLL_S)
                if not events and over is None:
                    over = await self._over(run_id)
                    if over is not None:
                        # Written meanwhile; a run that has just ended writes [DONE] right
                        # after its record, so wait a moment for it before giving up.
                        events = await self.state.read(run_id, after, _LAST_EVENT_S)
                if not events and over is not None:
                    yield sse(run_id, after + 1, json.dumps(over))
                    yield sse(run_id, after + 2, DONE)
                    return
            else:
                events = await _wait_after(tail, after, _POLL_S)
            if not events:
                if time.monotonic() - quiet_since > self.silence_s:
                    body = error_body("the run stopped sending events", "server_error", "run_lost")
                    yield sse(run_id, after + 1, json.dumps(body))
                    return
                yield _KEEPALIVE
                continue
            quiet_since = time.monotonic()
            for seq, data in events:
                yield sse(run_id, seq, data)
                after = seq
                if data == DONE:
                    return

    async def close(self) -> None:
        """Cancel the runs still going (the process is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _interrupted() -> dict[str, object]:
    return error_body(_INTERRUPTED_MESSAGE, "server_error", INTERRUPTED)


async def _wait_after(tail: _Tail, seq: int, wait_s: float) -> list[tuple[int, str]]:
    """The tail's events after ``seq``, waiting up to ``wait_s`` for some to come."""
    events = tail.after(seq)
    if not events:
        tail.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tail.changed.wait(), wait_s)
        events = tail.after(seq)
    return events
