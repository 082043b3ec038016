"""A chat model that answers through a chain: primary, secondaries, then the offline answerer.

Every model is streamed, whatever the caller asked for, so that two clocks bound each
attempt: ``timeout_s`` for the first chunk and ``stall_timeout_s`` between chunks. The
chain has a deadline (``deadline_s``) for remote models to start answering; inside a
turn it is what is left of the turn's budget (:mod:`app.llm.deadline`), which every call
of the turn draws on. Once it has passed, the offline answerer replies. With the primary
down, a call (and a turn) therefore ends within the deadline plus the offline answer,
and no call waits on a silent stream.

Tokens are forwarded to the caller's callbacks (LangGraph's ``stream_mode="messages"``)
as they arrive. When an attempt fails after it has streamed tokens, the next attempt
first sends an empty chunk with ``response_metadata["stream_reset"] = True``, and the
final message holds only the attempt that succeeded. Each failed attempt is recorded in
the final message's ``response_metadata["fallbacks"]``; ``served_by`` names the model
that answered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from pydantic import ConfigDict, Field, PrivateAttr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from app.llm.deadline import current_deadline
from app.llm.fallback.attempt import TokenSink, stream_attempt
from app.llm.fallback.resilience import ModelCallError, classify
from app.llm.usage import record_call
from app.observability import models as observed
from app.observability.metrics import model_name
from app.observability.tracing import span

__all__ = ["OFFLINE", "Backend", "FallbackChatModel"]

log = logging.getLogger(__name__)

OFFLINE = "offline"
"""``served_by`` when the offline answerer replied."""


@dataclass(frozen=True)
class Backend:
    """One model of the chain.

    Attributes:
        name: How the model is named in metadata and logs (``model@base_url``).
        model: The chat model.
        timeout_s: The longest wait for its first chunk.
        retries: Extra attempts after a retryable failure.
        checks_finish: Whether a reply without a finish reason is malformed (true for
            OpenAI-protocol servers, whose streams always end with one).
        recover_chars: Above 0, tool calls the model writes as text (up to this many
            characters) are recovered (:mod:`app.llm.tool_recovery`); 0 turns it off.
    """

    name: str
    model: BaseChatModel
    timeout_s: float
    retries: int = 2
    checks_finish: bool = True
    recover_chars: int = 0


_BOUND = 64
"""Tool sets whose bound chain is kept."""


def _tool_key(tool: Any) -> int | str:
    """A tool's key among bound tool sets: a dict spec by content, anything else by id."""
    return json.dumps(tool, sort_keys=True) if isinstance(tool, dict) else id(tool)


class _stop_at(stop_base):  # noqa: N801 - tenacity's naming for stop strategies
    """Stop retrying when the next attempt would start after the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep >= self.deadline


class FallbackChatModel(BaseChatModel):
    """Tries each backend in turn (with retries and a circuit breaker), then ``offline``.

    Attributes:
        backends: The remote models, primary first.
        offline: The last resort; None raises the last failure instead.
        breakers: One circuit per backend name, shared by every chain of the process.
        deadline_s: Time for remote models to start answering.
        stall_timeout_s: The longest silence between two chunks.
        backoff_s: Base of the jittered exponential backoff between retries.
        max_backoff_s: The longest single backoff.
        tools: Tools bound with :meth:`bind_tools`, as OpenAI tool specs.
        tool_choice: The ``tool_choice`` passed with them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backends: list[Backend]
    offline: BaseChatModel | None = None
    breakers: AsyncCircuitBreakerFactory = Field(exclude=True)
    deadline_s: float
    stall_timeout_s: float = 10.0
    backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | None = None
    _bound: dict[tuple[tuple[int | str, ...], str | None], tuple[FallbackChatModel, list[Any]]] = (
        PrivateAttr(default_factory=dict)
    )

    @property
    def _llm_type(self) -> str:
        return "fallback-chain"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"backends": [b.name for b in self.backends], "offline": self.offline is not None}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Return a copy of the chain whose every model is called with ``tools`` bound.

        Copies are kept per tool set: LangChain serializes a model once per instance for
        its callbacks, which would otherwise happen on every call. A spec given as a dict
        (a request's own tools, a new object on every request) is keyed by its content;
        the last ``_BOUND`` sets are kept.
        """
        key = (tuple(map(_tool_key, tools)), tool_choice)
        cached = self._bound.get(key)
        if cached is None:
            specs = [convert_to_openai_tool(tool) for tool in tools]
            # The tools are kept with the copy, so that their ids stay theirs.
            bound = self.model_copy(update={"tools": specs, "tool_choice": tool_choice})
            if len(self._bound) >= _BOUND:
                del self._bound[next(iter(self._bound))]
            cached = self._bound[key] = (bound, list(tools))
        return cached[0]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # The clients' connection pools belong to the event loop that serves the graph.
        raise NotImplementedError("the model chain is asynchronous: use ainvoke or astream")

    async def aclose(self) -> None:
        """Close the HTTP connection pools of the remote models."""
        for backend in self.backends:
            close = getattr(backend.model, "aclose", None)
            if close is not None:
                await close()
                continue
            client = getattr(backend.model, "root_async_client", None)
            if client is not None:
                await client.close()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        first = self.backends[0].name if self.backends else OFFLINE
        # OpenTelemetry GenAI conventions: the model's name only, no URL.
        with span(
            "model.call",
            operation="chat",
            provider=observed.provider_of(first),
            model=model_name(first),
        ):
            return await self._chain(messages, stop, run_manager, kwargs)

    async def _chain(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> ChatResult:
        started = time.monotonic()
        turn = current_deadline()
        if turn is None:
            deadline = started + self.deadline_s
            return await self._walk(messages, stop, run_manager, kwargs, started, deadline)
        answered = False
        try:
            deadline = started + min(self.deadline_s, turn.remaining())
            result = await self._walk(messages, stop, run_manager, kwargs, started, deadline)
            answered = result.generations[0].message.response_metadata["served_by"] != OFFLINE
            return result
        finally:
            # Cancelled or not, time spent without a remote reply comes off the turn's budget.
            if answered:
                turn.answered()
            else:
                turn.waited(time.monotonic() - started)

    async def _walk(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
        started: float,
        deadline: float,
    ) -> ChatResult:
        """Try each backend until ``deadline``, then the offline answerer."""
        trail: list[dict[str, Any]] = []
        sink = TokenSink(run_manager)
        last: ModelCallError | None = None
        failed: tuple[str, str] | None = None  # the last failed model and why
        for backend in self.backends:
            if time.monotonic() >= deadline:
                trail.append({"model": backend.name, "error": "deadline"})
                continue
            observed.moved_on(failed, backend.name)
            try:
                message = await self._call(backend, messages, stop, kwargs, deadline, sink, trail)
            except ModelCallError as err:
                if not err.falls_back:
                    raise
                last, failed = err, (backend.name, err.kind)
                continue
            return self._result(message, backend.name, trail, sink, started)
        if self.offline is None:
            raise last or ModelCallError("timeout", "the deadline passed before any model call")
        log.warning("answering offline after %d failed model attempts", len(trail))
        observed.moved_on(failed, OFFLINE)
        message = await stream_attempt(
            self.offline,
            messages,
            stop,
            kwargs,
            sink=sink,
            first_timeout=None,
            stall_timeout_s=self.stall_timeout_s,
            checks_finish=False,
            name=OFFLINE,
            tools=self.tools,
            tool_choice=self.tool_choice,
        )
        return self._result(message, OFFLINE, trail, sink, started)

    async def _call(
        self,
        backend: Backend,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        deadline: float,
        sink: TokenSink,
        trail: list[dict[str, Any]],
    ) -> AIMessage:
        breaker = await self.breakers.get_breaker(backend.name)
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, ModelCallError) and e.retryable),
            stop=stop_after_attempt(backend.retries + 1) | _stop_at(deadline),
            wait=wait_random_exponential(multiplier=self.backoff_s, max=self.max_backoff_s),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt, span("model.attempt", model=model_name(backend.name)) as traced:
                number = attempt.retry_state.attempt_number
                traced.set(attempt=number)
                first = max(0.0, min(backend.timeout_s, deadline - time.monotonic()))
                try:
                    async with breaker:
                        try:
                            return await stream_attempt(
                                backend.model,
                                messages,
                                stop,
                                kwargs,
                                sink=sink,
                                first_timeout=first,
                                stall_timeout_s=self.stall_timeout_s,
                                checks_finish=backend.checks_finish,
                                name=backend.name,
                                tools=self.tools,
                                tool_choice=self.tool_choice,
                                recover_chars=backend.recover_chars,
                            )
                        except Exception as exc:  # noqa: BLE001 - classified, then re-raised
                            raise classify(exc) from exc
                except OpenedState:
                    err = ModelCallError("circuit_open", "the circuit breaker is open")
                    observed.attempt_failed(err.kind)
                    trail.append({"model": backend.name, "attempt": number, "error": err.kind})
                    raise err from None
                except ModelCallError as err:
                    trail.append(
                        {"model": backend.name, "attempt": number, "error": err.kind}
                        | ({"status": err.status} if err.status else {})
                    )
                    log.warning("model %s attempt %d failed: %s", backend.name, number, err)
                    observed.attempt_failed(err.kind)
                    traced.set(status=err.status)
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    def _result(
        self,
        message: AIMessage,
        served_by: str,
        trail: list[dict[str, Any]],
        sink: TokenSink,
        started: float,
    ) -> ChatResult:
        elapsed = time.monotonic() - started
        observed.replied(served_by, message.usage_metadata, len(trail), elapsed)
        if served_by != OFFLINE:  # the offline answerer records its own calls
            record_call(served_by, message.usage_metadata)
        metadata = {**message.response_metadata, "served_by": served_by, "fallbacks": trail}
        final = message.model_copy(update={"id": sink.id, "response_metadata": metadata})
        return ChatResult(generations=[ChatGeneration(message=final)])
