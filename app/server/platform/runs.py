"""Runs of the LangGraph API: background, wait, stream, join, cancel, on ragent's run log.

Every run executes in the background through :class:`~app.server.runs.streams.RunManager`,
as a streamed ``/v1`` turn does: a client that goes away does not stop it, any worker
(Redis) can join its stream, and ``wait`` reads the same log to its end. A run holds its
thread's lock (the one ``/v1`` turns take), so a second run on a busy thread is a 409
(``multitask_strategy`` ``reject``, the only one served). ``command.resume`` answers a
pending tool approval (:mod:`app.tools.approval`); new input while one is pending is a
409. Identity comes from the API key (:func:`~app.server.platform.identity.run_context`).
Stateless runs (``/runs/...``) run on a fresh thread that is deleted after the run unless
``on_completion`` is ``keep``. The indexer assistant is not run here: it reads server
paths; ``POST /v1/ingest`` ingests.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response

from app.conversations import thread_config, thread_key
from app.server.auth import Principal
from app.server.chat_turns import busy, lock_key
from app.server.deps import ChatUser, ServicesDep, owner_of
from app.server.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.platform.bodies import RunCreate
from app.server.platform.encoding import jsonable
from app.server.platform.execution import GraphRun, run_events
from app.server.platform.guarded import guarded
from app.server.platform.identity import assistant_of, run_context
from app.server.platform.run_input import graph_input_of
from app.server.platform.run_records import PlatformRun, RunBook
from app.server.platform.streaming import after_event, read_run, run_headers, sse_response
from app.server.platform.threads import ThreadId, identity, own_thread
from app.server.services import Services

__all__ = ["router", "stateless"]

router = APIRouter(
    prefix="/threads/{thread_id}/runs",
    tags=["runs (LangGraph API)"],
    responses={**ERROR_RESPONSES, **NOT_FOUND, **CONFLICT},
)
stateless = APIRouter(
    prefix="/runs", tags=["runs (LangGraph API)"], responses={**ERROR_RESPONSES, **NOT_FOUND}
)

_INTERRUPT = "__interrupt__"
_MAX_METADATA_CHARS = 16_384


def _book(services: Services) -> RunBook:
    return RunBook(services.state, ttl_s=services.settings.server.jobs_ttl_s)


async def _listed(services: Services, owner: str, thread_id: str, title: str) -> None:
    """Mark the thread active; a thread created empty takes its first question as title."""
    info = await services.threads.get(owner, thread_id)
    if info is not None and not info.title and title:
        await services.threads.remove(owner, thread_id)  # the index keeps a first title
    await services.threads.touch(owner, thread_id, title)


async def _start(
    services: Services,
    principal: Principal,
    thread_id: str,
    body: RunCreate,
    *,
    modes: list[str],
    stateless_run: bool = False,
) -> PlatformRun:
    """Check and start a run in the background; returns its record."""
    assistant = assistant_of(body.assistant_id)
    if assistant.graph_id != "agent":
        raise ApiError(
            400,
            "the indexer assistant is not run over this API: POST /v1/ingest ingests",
            "unsupported_assistant",
            param="assistant_id",
        )
    context = run_context(principal, body.context, body.config)
    await services.quotas.admit(principal)
    if len(json.dumps(body.metadata or {})) > _MAX_METADATA_CHARS:
        raise ApiError(400, "metadata: larger than 16 KiB", "invalid_request", param="metadata")
    owner = owner_of(principal)
    if not stateless_run and await services.threads.get(owner, thread_id) is None:
        if body.if_not_exists != "create":
            raise ApiError(404, f"no thread {thread_id!r}", "not_found")
        await services.threads.touch(owner, thread_id, "")
    lock = busy(services, principal, thread_id)
    claim = await lock.__aenter__()
    book = _book(services)

    async def ended(final: PlatformRun) -> None:
        try:
            if final.stateless and body.on_completion != "keep":
                await services.checkpointer.adelete_thread(
                    thread_key(identity(principal), thread_id)
                )
        finally:
            await lock.__aexit__(None, None, None)

    try:
        graph_input, title = await graph_input_of(services, principal, thread_id, body)
        if not stateless_run:
            await _listed(services, owner, thread_id, title)
        record = PlatformRun(
            run_id="",
            thread_id=thread_id,
            assistant_id=assistant.assistant_id,
            owner=owner,
            metadata=body.metadata or {},
            stateless=stateless_run,
        )
        run = GraphRun(
            graph_input=graph_input,
            config=thread_config(context, thread_id),
            context=context,
            modes=modes,
            record=record,
        )
        run_id = await services.runs.start(
            owner,
            run_events(services, book, run, on_end=ended),
            thread_id=thread_id,
            lock=(lock_key(principal, thread_id), claim.token),
        )
    except BaseException:
        await lock.__aexit__(None, None, None)
        raise
    run.record = replace(run.record, run_id=run_id)
    try:
        await book.put(run.record)
    finally:
        run.ready.set()
    return run.record


async def _wait(services: Services, record: PlatformRun) -> Any:
    """Read a run to its end; return the thread's last values (or ``__error__``)."""
    error: Any = None
    interrupts: Any = None
    values: Any = {}
    async for event in read_run(services, record.run_id):
        if event is None:
            continue
        if event.event == "values":
            if _INTERRUPT in event.data:
                interrupts = event.data[_INTERRUPT]
            else:
                values = event.data
        elif event.event == "error":
            error = event.data
    if error is not None:
        return {"__error__": error}
    if interrupts:
        return {**values, _INTERRUPT: interrupts}
    return values


async def _waited(services: Services, record: PlatformRun) -> JSONResponse:
    """The run's result, with the headers that let a cut-off client join the run."""
    result = await _wait(services, record)
    return JSONResponse(result, headers=run_headers(record.thread_id, record.run_id, "join"))


async def _own_run(
    services: Services, principal: Principal, thread_id: str, run_id: str
) -> PlatformRun:
    return await _book(services).own(owner_of(principal), thread_id, run_id)


@router.post("", summary="Start a run in the background")
async def create_run(
    thread_id: ThreadId, body: RunCreate, services: ServicesDep, principal: ChatUser
) -> Any:
    """The run's record; join it, stream it or cancel it by its id."""
    record = await _start(services, principal, thread_id, body, modes=body.modes())
    headers = run_headers(thread_id, record.run_id, "stream")
    return JSONResponse(record.as_dict(), headers={"Content-Location": headers["Content-Location"]})


@router.post("/wait", summary="Run and wait for the thread's final values")
async def wait_run(
    thread_id: ThreadId, body: RunCreate, services: ServicesDep, principal: ChatUser
) -> Any:
    """The thread's values once the run ends (with ``__interrupt__`` when it paused)."""
    record = await _start(services, principal, thread_id, body, modes=["values"])
    return await _waited(services, record)


@router.post("/stream", summary="Run and stream its events (SSE)")
async def stream_run(
    thread_id: ThreadId, body: RunCreate, services: ServicesDep, principal: ChatUser
) -> Response:
    """``metadata``, then the events of each ``stream_mode``; ``error`` if it failed."""
    record = await _start(services, principal, thread_id, body, modes=body.modes())
    return sse_response(services, record.run_id, thread_id)


@router.get("", summary="A thread's runs, newest first")
async def list_runs(
    thread_id: ThreadId,
    services: ServicesDep,
    principal: ChatUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The runs the thread's list keeps."""
    await own_thread(services, principal, thread_id)
    runs = await _book(services).of_thread(owner_of(principal), thread_id)
    return [run.as_dict() for run in runs[offset : offset + limit]]


@router.get("/{run_id}", summary="One run")
async def get_run(
    thread_id: ThreadId, run_id: ThreadId, services: ServicesDep, principal: ChatUser
) -> Any:
    """The run's record."""
    return (await _own_run(services, principal, thread_id, run_id)).as_dict()


@router.get("/{run_id}/join", summary="Wait for a run; the thread's final values")
async def join_run(
    thread_id: ThreadId, run_id: ThreadId, services: ServicesDep, principal: ChatUser
) -> Any:
    """The thread's values once the run ends."""
    record = await _own_run(services, principal, thread_id, run_id)
    result = await _wait(services, record)
    if "__error__" in result or _INTERRUPT in result or result:
        return result
    # A run started without the values mode: its log holds no values; read the thread.
    snapshot = await services.agent.aget_state(thread_config(identity(principal), thread_id))
    return guarded(jsonable(snapshot.values or {}))


@router.get("/{run_id}/stream", summary="Join a run's stream (SSE)")
async def join_stream(
    thread_id: ThreadId,
    run_id: ThreadId,
    services: ServicesDep,
    principal: ChatUser,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The run's events from the start, or after ``Last-Event-ID``."""
    await _own_run(services, principal, thread_id, run_id)
    return sse_response(services, run_id, thread_id, after=after_event(last_event_id))


@router.post("/{run_id}/cancel", summary="Cancel a run")
async def cancel_run(
    thread_id: ThreadId,
    run_id: ThreadId,
    services: ServicesDep,
    principal: ChatUser,
    wait: Annotated[bool, Query()] = False,
) -> Response:
    """Mark the run cancelled; the process running it stops it within a second."""
    record = await _own_run(services, principal, thread_id, run_id)
    if record.status in {"pending", "running"}:
        await _book(services).cancel(run_id)
        if wait:
            async for _ in read_run(services, run_id):
                pass
    return Response(status_code=202 if not wait else 204)


async def _stateless(
    services: Services, principal: Principal, body: RunCreate, modes: list[str]
) -> PlatformRun:
    thread_id = str(uuid.uuid4())
    return await _start(services, principal, thread_id, body, modes=modes, stateless_run=True)


@stateless.post("/wait", summary="Run on a fresh thread and wait for its final values")
async def wait_stateless(body: RunCreate, services: ServicesDep, principal: ChatUser) -> Any:
    """Like ``/threads/{thread_id}/runs/wait`` on a thread deleted after the run."""
    record = await _stateless(services, principal, body, ["values"])
    return await _waited(services, record)


@stateless.post("/stream", summary="Run on a fresh thread and stream its events (SSE)")
async def stream_stateless(body: RunCreate, services: ServicesDep, principal: ChatUser) -> Response:
    """Like ``/threads/{thread_id}/runs/stream`` on a thread deleted after the run."""
    record = await _stateless(services, principal, body, body.modes())
    return sse_response(services, record.run_id, record.thread_id)
