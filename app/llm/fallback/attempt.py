"""One attempt of one chat model, streamed under two clocks, its chunks checked as a whole.

``first_timeout`` bounds the wait for the first chunk and ``stall_timeout_s`` the
silence between two chunks, so no attempt waits on a silent stream. Chunks are
forwarded to the caller's callbacks as they arrive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManager, AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig

from app.llm.fallback.resilience import FailureKind, ModelCallError
from app.llm.openai.chat_model import StreamingChatOpenAI
from app.llm.tool_recovery import RECOVERED_TOOL_CALLS, StreamGuard, recover_tool_calls
from app.observability import models as observed

__all__ = ["TokenSink", "checked_reply", "stream_attempt"]

_NOSTREAM = "nostream"  # LangGraph's messages stream skips runs tagged with this


async def stream_attempt(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
    *,
    sink: TokenSink,
    first_timeout: float | None,
    stall_timeout_s: float,
    checks_finish: bool,
    name: str,
    tools: list[dict[str, Any]],
    tool_choice: str | None,
    recover_chars: int = 0,
) -> AIMessage:
    """Stream one reply of ``model``, forwarding its chunks to ``sink``.

    Args:
        model: The chat model to call.
        messages: The conversation.
        stop: Stop sequences.
        kwargs: Further call options for the model.
        sink: Where chunks go (the run's callbacks).
        first_timeout: The longest wait for the first chunk; None waits as long as it takes.
        stall_timeout_s: The longest silence between two chunks.
        checks_finish: Whether a reply without a finish reason is malformed.
        name: The model's name in metrics.
        tools: OpenAI tool specs to bind; empty binds none.
        tool_choice: The ``tool_choice`` passed with them.
        recover_chars: When above 0 and tools are bound, tool calls the model writes as
            text (up to this many characters) are recovered into tool calls, and text
            that may be one is held back from ``sink`` (:mod:`app.llm.tool_recovery`).

    Returns:
        The whole reply.

    Raises:
        ModelCallError: ``timeout``, ``stall`` or ``malformed``; the model's own errors
            propagate unclassified.
    """
    runnable: Runnable[LanguageModelInput, BaseMessage] = model
    if tools:
        runnable = model.bind_tools(tools, tool_choice=tool_choice)
    config: RunnableConfig = {"tags": [_NOSTREAM]}
    manager = sink.run_manager
    observed_run = manager is not None and bool(manager.inheritable_handlers)
    if manager is not None:
        # The attempt is traced as a child of this run; the tag keeps its tokens off
        # LangGraph's messages stream, which gets them from this run instead.
        config["callbacks"] = AsyncCallbackManager(
            handlers=manager.inheritable_handlers,
            inheritable_handlers=manager.inheritable_handlers,
            parent_run_id=manager.run_id,
            tags=manager.inheritable_tags,
            inheritable_tags=manager.inheritable_tags,
            metadata=manager.inheritable_metadata,
            inheritable_metadata=manager.inheritable_metadata,
        )
    sink.begin_attempt()
    guard = StreamGuard(max_chars=recover_chars) if tools and recover_chars > 0 else None
    parts: list[AIMessageChunk] = []
    timeout = first_timeout
    began = time.monotonic()
    chunks: AsyncGenerator[BaseMessage, None]
    if (
        not observed_run
        and isinstance(model, StreamingChatOpenAI)
        and model.streams_unobserved(messages)
    ):
        # No callback would see the attempt's own run: skip its callback machinery.
        bound = runnable.kwargs if isinstance(runnable, RunnableBinding) else {}
        chunks = model.astream_unobserved(messages, stop=stop, **bound, **kwargs)
    else:
        chunks = cast(
            AsyncGenerator[BaseMessage, None],
            runnable.astream(messages, config, stop=stop, **kwargs),
        )
    async with aclosing(chunks) as stream:
        iterator = aiter(stream)
        while True:
            try:
                async with asyncio.timeout(timeout):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                break
            except TimeoutError:
                kind: FailureKind = "stall" if parts else "timeout"
                raise ModelCallError(kind, f"no chunk within {timeout:.1f} s") from None
            timeout = stall_timeout_s
            if not parts:
                observed.first_token(name, time.monotonic() - began)
            if not isinstance(chunk, AIMessageChunk):
                raise ModelCallError("malformed", f"unexpected {type(chunk).__name__}")
            parts.append(chunk)
            await sink.emit(_shown(chunk, guard))
    # One merge at the end: adding each chunk to a running sum built a message per chunk.
    total = add_ai_message_chunks(parts[0], *parts[1:]) if parts else None
    if guard is not None and isinstance(total, AIMessageChunk):
        total = await _recover(total, guard, tools, sink, name)
    return checked_reply(total, checks_finish)


def _shown(chunk: AIMessageChunk, guard: StreamGuard | None) -> AIMessageChunk:
    """The part of a chunk the caller may see now (text that may be a call is held)."""
    if guard is None or chunk.tool_call_chunks or not isinstance(chunk.content, str):
        return chunk
    text = guard.feed(chunk.content)
    return chunk if text == chunk.content else chunk.model_copy(update={"content": text})


async def _recover(
    total: AIMessageChunk,
    guard: StreamGuard,
    tools: list[dict[str, Any]],
    sink: TokenSink,
    name: str,
) -> AIMessageChunk:
    """Turn tool calls written as text into tool calls, or let the held text go."""
    found = None
    if not total.tool_calls and isinstance(total.content, str):
        found = recover_tool_calls(total.content, tools)
    if found is None:
        rest = guard.release()
        if rest:
            await sink.emit(AIMessageChunk(content=rest))
        return total
    observed.tool_calls_recovered(name, found.format, len(found.calls))
    calls = [
        tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
        for i, c in enumerate(found.calls)
    ]
    metadata = {
        **total.response_metadata,
        "finish_reason": "tool_calls",
        RECOVERED_TOOL_CALLS: found.format,
    }
    await sink.emit(AIMessageChunk(content="", tool_call_chunks=calls))
    return AIMessageChunk(
        content=found.text,
        tool_call_chunks=calls,
        additional_kwargs=total.additional_kwargs,
        response_metadata=metadata,
        usage_metadata=total.usage_metadata,
        id=total.id,
    )


class TokenSink:
    """Forwards chunks to the run's callbacks under one message id.

    After an attempt that streamed something fails, the next attempt's first chunk is
    preceded by an empty one with ``response_metadata["stream_reset"] = True``.
    """

    def __init__(self, run_manager: AsyncCallbackManagerForLLMRun | None) -> None:
        """Forward to ``run_manager``; None forwards nothing."""
        self.run_manager = run_manager
        self.id = f"lc_run--{run_manager.run_id}" if run_manager else None
        self.dirty = False
        self.reset_pending = False

    def begin_attempt(self) -> None:
        """Mark the start of an attempt."""
        if self.dirty:
            self.reset_pending, self.dirty = True, False

    async def emit(self, chunk: BaseMessageChunk) -> None:
        """Send one chunk to the caller's callbacks (none listening: nothing to send)."""
        if self.run_manager is None or not self.run_manager.handlers:
            return
        if self.reset_pending:
            self.reset_pending = False
            reset = AIMessageChunk(content="", id=self.id, response_metadata={"stream_reset": True})
            await self.run_manager.on_llm_new_token("", chunk=ChatGenerationChunk(message=reset))
        message = chunk.model_copy(update={"id": self.id})
        await self.run_manager.on_llm_new_token(
            message.text, chunk=ChatGenerationChunk(message=message)
        )
        self.dirty = True


def checked_reply(total: BaseMessageChunk | None, checks_finish: bool) -> AIMessage:
    """Turn the summed chunks of an attempt into a message, refusing what no caller could use.

    Args:
        total: The sum of the attempt's chunks (None when it sent none).
        checks_finish: Whether a missing finish reason makes the reply malformed.

    Returns:
        The reply as one message.

    Raises:
        ModelCallError: ``malformed``: no message, tool-call arguments that are not strict
            JSON, no finish reason, or neither text nor tool calls.
    """
    if not isinstance(total, AIMessageChunk):
        raise ModelCallError("malformed", "the stream ended without a message")
    # Strict JSON: the assembled message repairs truncated arguments ('{"a": "1+' parses as
    # {"a": "1+"}), which would run a tool on half a call.
    broken = [c.get("name") for c in total.tool_call_chunks if not _is_json(c.get("args"))]
    if total.invalid_tool_calls or broken:
        names = ", ".join(map(str, broken or [c.get("name") for c in total.invalid_tool_calls]))
        raise ModelCallError("malformed", f"tool call arguments are not JSON ({names})")
    if checks_finish and not total.response_metadata.get("finish_reason"):
        raise ModelCallError("malformed", "the stream ended without a finish reason")
    if not total.text and not total.tool_calls:
        raise ModelCallError("malformed", "the reply is empty")
    return AIMessage(
        content=total.content,
        tool_calls=total.tool_calls,
        additional_kwargs=total.additional_kwargs,
        response_metadata=dict(total.response_metadata),
        usage_metadata=total.usage_metadata,
    )


def _is_json(args: str | None) -> bool:
    if not args:
        return True  # a call without arguments
    try:
        json.loads(args)
    except ValueError:
        return False
    return True
