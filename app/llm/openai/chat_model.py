"""``ChatOpenAI`` whose plain streaming calls read the wire directly, over aiohttp.

``ChatOpenAI`` streams through the openai SDK, which validates each request through its
typed-dict transforms and builds a pydantic model for every chunk, which langchain then
dumps back into a dict. For a local model that answers at once, that was the largest
share of the graph's CPU time per turn. This subclass keeps everything that makes it a
``ChatOpenAI`` (settings, payload building, tool binding, chunk conversion, structured
output), and for plain streamed chat completions posts the payload itself and parses the
server-sent events into dicts (orjson), handing them to the same chunk conversion.

The wire is aiohttp (:mod:`app.llm.openai.transport`): a streamed completion from a local server
took 0.7 ms of CPU there against 3.1-3.5 ms through httpx.

Tool-call arguments are held back until the stream ends and capped in size
(:mod:`app.llm.openai.tool_args`), so no partial argument is parsed on the event loop.

Errors keep the openai SDK's types (``APIStatusError`` subclasses by status, ``APIError``
for an error event inside a stream); the connection's errors are raised as httpx's
(``httpx.ConnectError`` and the like, see :func:`app.llm.openai.transport.as_httpx`), so the
fallback chain classifies them as before. Requests that need the SDK's own features
(``response_format``, response headers, a gateway, a callable API key, extra headers or
query parameters) take the inherited path over ``http_async_client``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
import httpx
import openai
import orjson
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from pydantic import Field, PrivateAttr, SecretStr

from app.llm.openai.tool_args import ToolArgs
from app.llm.openai.transport import (
    WirePool,
    as_httpx,
    httpx_request,
    httpx_response,
    request_timeout,
    sse_data,
)

__all__ = ["StreamingChatOpenAI", "status_error"]

# Payload keys the SDK consumes itself instead of sending them as JSON fields.
_SDK_ONLY = frozenset({"extra_headers", "extra_query", "timeout", "response_format"})

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(response: httpx.Response) -> openai.APIStatusError:
    """Return the openai SDK's error for an HTTP error response (its body already read)."""
    status, content = response.status_code, response.content
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = content.decode("utf-8", "replace") or None
    error = body.get("error") if isinstance(body, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    message = f"Error code: {status} - {detail or body}"
    # The SDK types its responses with its own httpx fork; it reads only status_code,
    # headers and request, which httpx's response has too.
    wire: Any = response
    if status >= 500:
        return openai.InternalServerError(message, response=wire, body=body)
    kind = _STATUS_ERRORS.get(status, openai.APIStatusError)
    return kind(message, response=wire, body=body)


class StreamingChatOpenAI(ChatOpenAI):
    """A ``ChatOpenAI`` that streams plain chat completions without the openai SDK."""

    max_tool_args_bytes: int = Field(default=65536, gt=0)
    """The most bytes of tool-call arguments one reply may stream (``llm.max_tool_args_bytes``)."""
    _wire: WirePool = PrivateAttr(default_factory=WirePool)

    async def aclose(self) -> None:
        """Close this event loop's wire connections and the SDK's client."""
        await self._wire.aclose()
        await self.root_async_client.close()

    def streams_unobserved(self, messages: list[BaseMessage]) -> bool:
        """Whether :meth:`astream_unobserved` can take ``messages``.

        It can for plain text content, the default output version, no rate limiter and
        no gateway.
        """
        return (
            self.output_version != "v1"
            and self.rate_limiter is None
            and not self._uses_gateway
            and all(isinstance(m.content, str) for m in messages)
        )

    async def astream_unobserved(
        self, messages: list[BaseMessage], *, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncGenerator[AIMessageChunk, None]:
        """Stream a reply's chunks as ``astream`` does, for a call that no callback observes.

        ``astream`` starts a traced run, sends every token to the callbacks and merges
        the whole reply again for its end event: with no callback to receive any of it,
        that was a third of the call's CPU time for a short reply. The chunks are the
        same: each carries its generation info (the finish reason, the model name) in
        its ``response_metadata``, as ``astream`` puts it there. Check
        :meth:`streams_unobserved` first: the message normalisation ``astream`` does is
        a no-op only for plain text.
        """
        for tracing_only in ("ls_structured_output_format", "structured_output_format"):
            kwargs.pop(tracing_only, None)  # as astream does: never sent to the server
        async for generation in self._astream(messages, stop, **kwargs):
            message = generation.message
            if not isinstance(message, AIMessageChunk):
                raise TypeError(f"unexpected {type(message).__name__} in a chat stream")
            message.response_metadata = {
                **(generation.generation_info or {}),
                **message.response_metadata,
            }
            yield message

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        key = self.openai_api_key
        options = dict(kwargs, stream=True)
        if self._should_stream_usage(stream_usage, **kwargs):
            options["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, stop=stop, **options)
        if (
            not isinstance(key, SecretStr)
            or self.include_response_headers
            or self._uses_gateway
            or _SDK_ONLY.intersection(payload)
        ):
            inherited = super()._astream(
                messages, stop, run_manager, stream_usage=stream_usage, **kwargs
            )
            async for generation in inherited:
                yield generation
            return
        extra = payload.pop("extra_body", None) or {}
        body = {**payload, **extra}
        async for generation in self._stream_wire(key, body, run_manager):
            yield generation

    async def _post(
        self,
        session: aiohttp.ClientSession,
        url: str,
        data: bytes,
        headers: dict[str, str],
        timeout: float | None,
    ) -> aiohttp.ClientResponse:
        """POST the request; once more on a new connection if a pooled one was dead.

        A server may close a keep-alive connection between two requests (llama.cpp's
        server closes one after a few requests), and the pool only learns it when the next
        request on it finds the connection gone before any response: that request never
        reached the server, so it is sent again, once, without counting as a failure.
        """
        for attempt in (1, 2):
            try:
                return await session.post(
                    url,
                    data=data,
                    headers=headers,
                    timeout=request_timeout(timeout),
                    proxy=self._wire.proxy(url),
                )
            except aiohttp.ClientConnectorError:
                raise  # no connection could be made: the server is down, not a dead pool
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                # Dropped before any response, or while the request was being written.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _stream_wire(
        self,
        key: SecretStr,
        body: dict[str, Any],
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> AsyncIterator[ChatGenerationChunk]:
        headers = {
            **(self.default_headers or {}),
            "Authorization": f"Bearer {key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        if self.openai_organization:
            headers["OpenAI-Organization"] = self.openai_organization
        base = str(self.openai_api_base or "https://api.openai.com/v1").rstrip("/")
        url = f"{base}/chat/completions"
        timeout = self.request_timeout if isinstance(self.request_timeout, int | float) else None
        session = self._wire.session()
        default_class: type[BaseMessageChunk] = AIMessageChunk
        encoded = orjson.dumps(body)
        with as_httpx(url):
            response = await self._post(session, url, encoded, headers, timeout)
            async with response:
                if response.status >= 400:
                    content = await response.read()
                    raise status_error(
                        httpx_response(url, response.status, response.headers, content)
                    )
                done = False
                held = ToolArgs(self.max_tool_args_bytes)
                async for data in sse_data(response.content.iter_any()):
                    # Read on past [DONE] to the end of the body, as the SDK does: a
                    # response closed early cannot go back to the pool, so the next call
                    # would connect anew.
                    done = done or data.startswith("[DONE]")
                    if done:
                        continue
                    chunk = orjson.loads(data)
                    if not isinstance(chunk, dict):
                        raise ValueError("a stream event is not a JSON object")
                    if chunk.get("error"):
                        error = chunk["error"]
                        detail = error.get("message") if isinstance(error, dict) else error
                        # The SDK types its errors with its own httpx fork; it reads only
                        # the request's method and URL, which httpx's request has too.
                        request: Any = httpx_request(url)
                        raise openai.APIError(
                            str(detail or "error event in the stream"), request, body=error
                        )
                    held.strip(chunk)
                    generation = self._convert_chunk_to_generation_chunk(chunk, default_class, {})
                    if generation is None:
                        continue
                    default_class = generation.message.__class__
                    if run_manager:
                        await run_manager.on_llm_new_token(
                            generation.text,
                            chunk=generation,
                            logprobs=(generation.generation_info or {}).get("logprobs"),
                        )
                    yield generation
        tail = held.tail()
        if tail is not None:
            generation = ChatGenerationChunk(message=tail)
            if run_manager:
                await run_manager.on_llm_new_token("", chunk=generation)
            yield generation
