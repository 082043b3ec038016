"""One run of the agent, as the LangGraph API's stream events.

The run yields ``{"event": ..., "data": ...}`` envelopes, which the run log keeps
(:class:`~app.server.runs.streams.RunManager`): ``metadata`` first, then one event per
chunk of each stream mode asked for (``values``, ``updates``, ``custom``, and
``messages`` as ``messages/metadata`` + ``messages/partial``, or ``messages-tuple`` as
``messages``), then ``error`` if it failed. Streamed replies pass the output guard's
checks as on ``/v1`` (:class:`~app.safety.reply.TokenGuard`): only the ``respond`` node's
reply streams as tokens, redacted as the final answer is. Every other event's data
passes the same guard whole (:func:`~app.server.platform.guarded.guarded`). A run
marked cancelled stops within :data:`CANCEL_POLL_S`, and its record says ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.messages import AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from app.answer import Token
from app.context import Context
from app.llm.deadline import turn_deadline
from app.llm.usage import metered
from app.safety.reply import TokenGuard
from app.server.platform.encoding import dumps, jsonable
from app.server.platform.guarded import guarded
from app.server.platform.run_records import PlatformRun, RunBook, RunStatus
from app.server.quotas import count_cost, price_calls
from app.server.services import Services

__all__ = ["CANCEL_POLL_S", "GraphRun", "run_events"]

log = logging.getLogger("ragent.server")

CANCEL_POLL_S = 0.5
"""How often a run checks whether it was cancelled (from any process)."""
_INTERRUPT = "__interrupt__"
_TRACE_MODES = frozenset({"debug", "checkpoints", "tasks"})
_META_KEYS = ("langgraph_node", "langgraph_step", "langgraph_triggers", "langgraph_path")


@dataclass(kw_only=True)
class GraphRun:
    """What one run executes."""

    graph_input: Any
    config: RunnableConfig
    context: Context
    modes: list[str]
    record: PlatformRun
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the run's record carries its id; the run starts then."""


def envelope(event: str, data: Any) -> str:
    """One event of the run log."""
    return dumps({"event": event, "data": data})


class _Messages:
    """The ``messages`` events: the reply's tokens through the output guard."""

    def __init__(self, context: Context, max_chars: int, modes: list[str]) -> None:
        self.prompt = context.system_prompt
        self.guard = TokenGuard(prompt=self.prompt, max_chars=max_chars)
        self.partial = "messages" in modes
        self.tuple = "messages-tuple" in modes
        self.texts: dict[str, str] = {}
        self.meta: dict[str, dict[str, Any]] = {}

    def _events(self, token: Token) -> list[str]:
        message_id = token.message_id
        before = self.texts.get(message_id)
        text = "" if token.restart or before is None else before
        text = token.text if token.refusal else text + token.text
        self.texts[message_id] = text
        meta = self.meta.get(message_id, {})
        out = []
        if self.partial:
            if before is None:
                out.append(envelope("messages/metadata", {message_id: {"metadata": meta}}))
            chunk = AIMessageChunk(content=text, id=message_id)
            out.append(envelope("messages/partial", [chunk]))
        if self.tuple:
            delta = AIMessageChunk(content=token.text, id=message_id)
            out.append(envelope("messages", [delta, meta]))
        return out

    def feed(self, message: BaseMessage, meta: dict[str, Any]) -> list[str]:
        if isinstance(message, ToolMessage):
            return self._whole(message, meta)
        if meta.get("langgraph_node") != "respond" or not isinstance(message, AIMessageChunk):
            return []
        message_id = message.id or ""
        self.meta.setdefault(message_id, {k: meta[k] for k in _META_KEYS if k in meta})
        if message.response_metadata.get("stream_reset"):
            return self._events(self.guard.restart(message_id))
        if not message.text:
            return []
        return [
            e for token in self.guard.feed(message_id, message.text) for e in self._events(token)
        ]

    def _whole(self, message: ToolMessage, meta: dict[str, Any]) -> list[str]:
        kept = {k: meta[k] for k in _META_KEYS if k in meta}
        data = guarded(jsonable(message), self.prompt)
        out = []
        if self.partial:
            out.append(envelope("messages/metadata", {message.id or "": {"metadata": kept}}))
            out.append(envelope("messages/complete", [data]))
        if self.tuple:
            out.append(envelope("messages", [data, kept]))
        return out

    def close(self) -> list[str]:
        return [e for token in self.guard.close() for e in self._events(token)]


def _unscoped(value: Any, scoped: str, thread_id: str) -> Any:
    """``value`` with the owner-scoped checkpoint key replaced by the caller's thread id."""
    if isinstance(value, str):
        return thread_id if value == scoped else value
    if isinstance(value, list):
        return [_unscoped(v, scoped, thread_id) for v in value]
    if isinstance(value, dict):
        return {k: _unscoped(v, scoped, thread_id) for k, v in value.items()}
    return value


def _traced(chunk: Any, scoped: str, thread_id: str) -> Any:
    """A ``debug``, ``checkpoints`` or ``tasks`` chunk as LangGraph's server sends it.

    Checkpoints also name their config as ``checkpoint`` / ``parent_checkpoint`` (what
    Studio reads), and no payload shows the owner-scoped checkpoint key.
    """
    data = jsonable(chunk)
    payload = data.get("payload") if data.get("type") == "checkpoint" else None
    if isinstance(payload, dict) and "config" in payload:
        payload["checkpoint"] = payload["config"].get("configurable")
        parent = payload.get("parent_config") or {}
        payload["parent_checkpoint"] = parent.get("configurable")
    return _unscoped(data, scoped, thread_id)


async def _stream(services: Services, run: GraphRun, into: asyncio.Queue[str | None]) -> None:
    """Run the graph, putting the run's events on ``into``."""
    modes = set(run.modes)
    settings = services.settings
    messages = _Messages(run.context, settings.limits.max_output_chars, run.modes)
    graph_modes = ["values", "updates"]
    if modes & {"messages", "messages-tuple"}:
        graph_modes.append("messages")
    graph_modes += sorted(modes & {"custom", *_TRACE_MODES})
    scoped = str(run.config.get("configurable", {}).get("thread_id", ""))
    with metered() as ledger:
        try:
            with turn_deadline(settings.llm.deadline_s or settings.llm.timeout_s):
                await _graph(services, run, into, graph_modes, messages, scoped)
        finally:  # a run cancelled or failed midway used its models' tokens all the same
            calls: list[dict[str, Any]] = [dict(c) for c in ledger.calls]
            price_calls(calls, settings.server.prices)
            count_cost(services.metrics, calls)
            try:
                await services.quotas.charge(run.context, calls)
            except Exception as exc:  # noqa: BLE001 - the run's own outcome comes first
                log.warning(
                    "could not count run %s's tokens: %s", run.record.run_id, type(exc).__name__
                )
    for event in messages.close():
        await into.put(event)


async def _graph(
    services: Services,
    run: GraphRun,
    into: asyncio.Queue[str | None],
    graph_modes: list[str],
    messages: _Messages,
    scoped: str,
) -> None:
    """Stream the graph's chunks as the run's events."""
    modes = set(run.modes)
    settings = services.settings
    prompt = run.context.system_prompt
    async for mode, chunk in services.agent.astream(
        run.graph_input,
        run.config,
        context=run.context,
        stream_mode=cast(Any, graph_modes),
        durability=settings.checkpoint.durability,
    ):
        if mode == "messages":
            message, meta = cast(tuple[BaseMessage, dict[str, Any]], chunk)
            for event in messages.feed(message, meta):
                await into.put(event)
            continue
        for event in messages.close() if mode != "custom" else ():
            await into.put(event)  # a step ended: the rest of its reply goes first
        if mode == "updates" and _INTERRUPT in cast(dict[str, Any], chunk):
            interrupts = guarded(jsonable(cast(dict[str, Any], chunk)[_INTERRUPT]), prompt)
            name = "updates" if "updates" in modes else "values"
            await into.put(envelope(name, {_INTERRUPT: interrupts}))
        elif mode in _TRACE_MODES:
            traced = _traced(chunk, scoped, run.record.thread_id)
            await into.put(envelope(mode, guarded(traced, prompt)))
        elif mode in modes:
            await into.put(envelope(mode, guarded(jsonable(chunk), prompt)))


async def _watch(book: RunBook, run_id: str, task: asyncio.Task[None]) -> None:
    """Cancel ``task`` once the run is marked cancelled."""
    while not task.done():
        await asyncio.sleep(CANCEL_POLL_S)
        if await book.cancelled(run_id):
            task.cancel()
            return


async def run_events(
    services: Services,
    book: RunBook,
    run: GraphRun,
    on_end: Callable[[PlatformRun], Awaitable[None]] | None = None,
) -> AsyncIterator[str]:
    """Yield a run's events; its record follows its status.

    Args:
        services: The process's services.
        book: Where the run's record lives.
        run: What to run.
        on_end: Awaited with the final record once the run ended, before its last event.
    """
    await run.ready.wait()
    record = run.record
    status: RunStatus = "interrupted"  # unless the graph's task ends by itself
    failure: dict[str, str] | None = None
    task: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        record = await book.set_status(record, "running")
        yield envelope("metadata", {"run_id": record.run_id, "attempt": 1})
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                await _stream(services, run, queue)
            finally:
                queue.put_nowait(None)

        task = asyncio.create_task(produce(), name=f"graph {record.run_id}")
        watcher = asyncio.create_task(_watch(book, record.run_id, task))
        while (event := await queue.get()) is not None:
            yield event
        await asyncio.wait({task})
        if task.cancelled():
            failure = {"error": "CancelledError", "message": "the run was cancelled"}
        elif (exc := task.exception()) is not None:
            log.error("run %s failed: %s", record.run_id, type(exc).__name__)
            status, failure = "error", {"error": type(exc).__name__, "message": "the run failed"}
        else:
            status = "success"
    finally:
        # Every way out (the process stopping included) ends the record and frees the thread.
        if watcher is not None:
            watcher.cancel()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        try:
            record = await book.set_status(record, status)
        finally:
            if on_end is not None:
                await on_end(record)
    if failure is not None:
        yield envelope("error", failure)
