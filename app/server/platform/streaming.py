"""A run's log read back as the LangGraph API's server-sent events.

The run log (:class:`~app.server.runs.streams.RunManager`) holds each event's envelope;
readers get ``event: <name>`` / ``data: <json>`` / ``id: <sequence>``, as ``langgraph_sdk``
parses them. A reader that sends ``Last-Event-ID: <sequence>`` gets the events after it.
An error the log itself ends on (the run's process died, or its events expired) becomes
an ``error`` event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse

from app.server.errors import ApiError
from app.server.runs.streams import DONE
from app.server.services import Services

__all__ = ["RunEvent", "after_event", "read_run", "run_headers", "sse_response"]

_HEARTBEAT = b": heartbeat\n\n"


@dataclass(frozen=True)
class RunEvent:
    """One event of a run."""

    seq: int
    event: str
    data: Any


def _parse(chunk: bytes) -> tuple[int, str] | None:
    """``(sequence, data)`` of one event of the run log's SSE, or None for a keep-alive."""
    seq, data = 0, None
    for line in chunk.decode().splitlines():
        if line.startswith("id: "):
            seq = int(line.rpartition(":")[2])
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
    return None if data is None else (seq, data)


async def read_run(
    services: Services, run_id: str, after: int = 0
) -> AsyncIterator[RunEvent | None]:
    """Yield a run's events after ``after`` until it ends (None while it is quiet)."""
    async for chunk in services.runs.follow(run_id, after):
        parsed = _parse(chunk)
        if parsed is None:
            yield None
            continue
        seq, data = parsed
        if data == DONE:
            return
        body = json.loads(data)
        if "event" in body:
            yield RunEvent(seq, body["event"], body["data"])
        else:  # the log's own error: the run's process died, or its events expired
            error = body.get("error", {})
            message = {"error": error.get("code", "error"), "message": error.get("message", "")}
            yield RunEvent(seq, "error", message)


def after_event(last_event_id: str | None) -> int:
    """The sequence a reader has read up to, from its ``Last-Event-ID``.

    Raises:
        ApiError: 400 when it is not a sequence number.
    """
    if not last_event_id:
        return 0
    value = last_event_id.strip().rpartition(":")[2]
    if not value.isdigit():
        raise ApiError(400, "Last-Event-ID must be an event id of this run", "invalid_event_id")
    return int(value)


async def _encoded(events: AsyncIterator[RunEvent | None]) -> AsyncIterator[bytes]:
    async for item in events:
        if item is None:
            yield _HEARTBEAT
            continue
        data = json.dumps(item.data, ensure_ascii=False)
        yield f"event: {item.event}\ndata: {data}\nid: {item.seq}\n\n".encode()


def run_headers(thread_id: str, run_id: str, resume: str) -> dict[str, str]:
    """Where a run is (``Content-Location``) and where a cut-off reader picks up (``Location``).

    ``langgraph_sdk`` reads the run's id from the first, and reconnects to the second
    (``join`` for a wait, ``stream`` with ``Last-Event-ID`` for a stream) when a
    response breaks off.
    """
    run = f"/threads/{thread_id}/runs/{run_id}"
    return {"Content-Location": run, "Location": f"{run}/{resume}"}


def sse_response(
    services: Services, run_id: str, thread_id: str, *, after: int = 0
) -> StreamingResponse:
    """Stream a run's events as SSE."""
    return StreamingResponse(
        _encoded(read_run(services, run_id, after)),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            **run_headers(thread_id, run_id, "stream"),
        },
    )
