"""The chunks of one model attempt: forwarded to the caller, then checked as a whole."""

from __future__ import annotations

import json

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from app.llm.resilience import ModelCallError

__all__ = ["TokenSink", "checked_reply"]


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
