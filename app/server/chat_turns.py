"""Running a turn for the API: one run per conversation at a time, JSON or streamed.

A streamed turn runs in the background (:class:`~app.server.runs.streams.RunManager`) and the
response follows its event log, so a dropped connection neither stops the run nor
loses its events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from fastapi.responses import StreamingResponse

from app.conversations import thread_config
from app.server.auth import Principal
from app.server.client_tools import check_results
from app.server.completions import Turn, completion, stream_chunks
from app.server.deps import owner_of
from app.server.errors import ApiError
from app.server.quotas import count_cost, price_calls
from app.server.runs.recovery import close_interrupted
from app.server.services import Services
from app.server.shared_state import Claim
from app.tools.approval import pending_approvals
from app.tools.client import pending_client_calls
from app.turns import (
    Answer,
    Token,
    ask,
    resume,
    stream_ask,
    stream_resume,
)

__all__ = ["LOCK_TTL_S", "busy", "lock_key", "run_json", "run_stream"]

log = logging.getLogger("ragent.server")


LOCK_TTL_S = 10.0
"""A conversation's lock lapses this long after its holder last renewed it (it died)."""


def lock_key(principal: Principal, thread_id: str) -> str:
    """The key of a conversation's lock in the shared state."""
    return f"busy:{owner_of(principal)}/{thread_id}"


async def _heartbeat(claim: Claim, key: str) -> None:
    """Renew ``claim`` every third of its TTL while the run goes on."""
    while True:
        await asyncio.sleep(LOCK_TTL_S / 3)
        try:
            if not await claim.renew():
                log.warning("lost the lock %s: it lapsed before it was renewed", key)
                return
        except Exception as exc:  # noqa: BLE001 - a blip; the next beat tries again
            log.warning("could not renew the lock %s: %s", key, type(exc).__name__)


@asynccontextmanager
async def busy(services: Services, principal: Principal, thread_id: str) -> AsyncIterator[Claim]:
    """Hold a conversation for one run; a second concurrent run on it gets a 409.

    The lock lapses ``LOCK_TTL_S`` after its last renewal; a heartbeat renews it while
    the run goes on, so a process killed mid-run holds the conversation only that long.
    Only its holder (a token) renews or releases it.

    Yields:
        The held lock (its ``token`` is the lock key's value while it is held).

    Raises:
        ApiError: 409 (``conversation_busy``) when another run holds the conversation.
    """
    key = lock_key(principal, thread_id)
    claim = services.state.claim(key, LOCK_TTL_S)
    if not await claim.acquire():
        raise ApiError(
            409,
            f"conversation {thread_id!r} is answering another request; retry when it is done",
            "conversation_busy",
            headers={"Retry-After": "1"},
        )
    beat = asyncio.create_task(_heartbeat(claim, key), name=f"heartbeat {key}")
    try:
        yield claim
    finally:
        beat.cancel()
        await asyncio.wait({beat})  # no renewal after the release
        await claim.release()


async def _before(services: Services, turn: Turn) -> None:
    """Refuse a new message while a run waits; seed a new conversation's history.

    A conversation whose last run died mid-turn is closed first (:func:`close_interrupted`).
    """
    agent = services.agent
    config = thread_config(turn.context, turn.thread_id)
    if turn.continues:
        snapshot = await agent.aget_state(config)
        if pending_approvals(snapshot.interrupts):
            raise ApiError(
                409,
                f"conversation {turn.thread_id!r} waits for a decision on tool calls: POST "
                f"/v1/threads/{turn.thread_id}/resume first",
                "approval_pending",
            )
        if pending_client_calls(snapshot.interrupts):
            raise ApiError(
                409,
                f"conversation {turn.thread_id!r} waits for the results of your tool calls: "
                "send them as tool messages first",
                "tool_results_pending",
            )
        if await close_interrupted(agent, config, snapshot):
            log.info("closed the turn a stopped run left open on a conversation")
    if turn.history:
        # Written as the last node's output: the turn then starts after this history.
        await agent.aupdate_state(config, {"messages": turn.history}, as_node="compress_memory")


def _outcome(answer: Answer) -> str:
    if answer.approvals or answer.client_calls:
        return "waiting"
    return "refused" if answer.refused else "answered"


async def _decision(services: Services, turn: Turn, decision: Any) -> Any:
    """The resume value of a turn, once it is checked.

    That is a decision on approvals, the caller's tool results, or None for a new
    message (after the checks of :func:`_before`).
    """
    if turn.results is not None:
        return await check_results(services.agent, turn.context, turn.results)
    if decision is None:
        await _before(services, turn)
    return decision


async def _record(
    services: Services, principal: Principal, turn: Turn, answer: Answer, mode: str
) -> None:
    services.metrics.runs.labels(mode, _outcome(answer)).inc()
    await services.quotas.charge(principal, answer.model_calls)
    count_cost(services.metrics, answer.model_calls)
    services.metrics.tokens.labels("prompt").inc(answer.usage.get("prompt_tokens", 0))
    services.metrics.tokens.labels("completion").inc(answer.usage.get("completion_tokens", 0))


async def _listed(services: Services, principal: Principal, turn: Turn) -> None:
    """List the conversation before its run: a run that dies still leaves it findable."""
    await services.threads.touch(owner_of(principal), turn.thread_id, turn.question)


async def run_json(
    services: Services, principal: Principal, turn: Turn, *, decision: Any = None
) -> dict[str, Any]:
    """Run a turn (or resume one with ``decision``) and return its ``chat.completion``."""
    max_chars = services.settings.limits.max_input_chars
    # A new conversation's id is random and reaches the client only with this response,
    # so no other request can name it while the run goes on: it needs no lock (two round
    # trips to Redis saved). A stream sends the id with its first event, so it takes one.
    new = not turn.continues and decision is None
    async with nullcontext() if new else busy(services, principal, turn.thread_id):
        decision = await _decision(services, turn, decision)
        await services.quotas.admit(principal)
        await _listed(services, principal, turn)
        if decision is None:
            answer = await ask(
                services.agent,
                turn.question,
                context=turn.context,
                thread_id=turn.thread_id,
                max_chars=max_chars,
            )
        else:
            answer = await resume(
                services.agent, decision, context=turn.context, thread_id=turn.thread_id
            )
    price_calls(answer.model_calls, services.settings.server.prices)
    await _record(services, principal, turn, answer, "json")
    return completion(turn, answer)


async def run_stream(
    services: Services,
    principal: Principal,
    turn: Turn,
    *,
    include_usage: bool,
    decision: Any = None,
) -> StreamingResponse:
    """Start a turn (or a resume) in the background and stream its events."""
    started = time.perf_counter()
    metrics = services.metrics
    lock = busy(services, principal, turn.thread_id)
    claim = await lock.__aenter__()

    async def release() -> None:
        await lock.__aexit__(None, None, None)

    try:
        decision = await _decision(services, turn, decision)
        await services.quotas.admit(principal)
        await _listed(services, principal, turn)
        events = _priced(services, _events(services, turn, decision))

        async def finished(answer: Answer) -> None:
            await _record(services, principal, turn, answer, "stream")

        def first_token() -> None:
            metrics.first_token.observe(time.perf_counter() - started)

        async def guarded() -> AsyncIterator[str]:
            metrics.active_streams.inc()
            try:
                async for data in stream_chunks(
                    turn,
                    events,
                    include_usage=include_usage,
                    on_answer=finished,
                    on_token=first_token,
                ):
                    yield data
            finally:
                metrics.active_streams.dec()

        # The run releases the lock once its record says it ended (see RunManager.start).
        run_id = await services.runs.start(
            owner_of(principal),
            guarded(),
            thread_id=turn.thread_id,
            lock=(lock_key(principal, turn.thread_id), claim.token),
            on_end=release,
        )
    except BaseException:
        await release()
        raise
    return StreamingResponse(
        services.runs.follow(run_id),
        media_type="text/event-stream",
        headers={"X-Run-Id": run_id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _priced(
    services: Services, events: AsyncIterator[Token | Answer]
) -> AsyncIterator[Token | Answer]:
    """The events, with the answer's model calls priced before its usage chunk is sent."""
    async for event in events:
        if isinstance(event, Answer):
            price_calls(event.model_calls, services.settings.server.prices)
        yield event


def _events(services: Services, turn: Turn, decision: Any) -> AsyncIterator[Token | Answer]:
    if decision is None:
        return stream_ask(
            services.agent,
            turn.question,
            context=turn.context,
            thread_id=turn.thread_id,
            max_chars=services.settings.limits.max_input_chars,
        )
    return stream_resume(services.agent, decision, context=turn.context, thread_id=turn.thread_id)
