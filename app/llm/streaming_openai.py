"""``ChatOpenAI`` whose plain streaming calls read the wire directly.

``ChatOpenAI`` streams through the openai SDK, which validates each request through its
typed-dict transforms and builds a pydantic model for every chunk, which langchain then
dumps back into a dict. For a local model that answers at once, that was the largest
share of the graph's CPU time per turn. This subclass keeps everything that makes it a
``ChatOpenAI`` (settings, payload building, tool binding, chunk conversion, structured
output), and for plain streamed chat completions posts the payload itself and parses the
server-sent events into dicts (orjson), handing them to the same chunk conversion.

Errors keep the openai SDK's types (``APIStatusError`` subclasses by status, ``APIError``
for an error event inside a stream; httpx's timeout and transport errors as they are),
so the fallback chain classifies them as before. Requests that need the SDK's own
features (``response_format``, response headers, a gateway, a callable API key, extra
headers or query parameters) take the inherited path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import orjson
from httpx_sse import aconnect_sse
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

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
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = response.text or None
    error = body.get("error") if isinstance(body, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    message = f"Error code: {response.status_code} - {detail or body}"
    # The SDK types its responses with its own httpx fork; it reads only status_code,
    # headers and request, which httpx's response has too.
    wire: Any = response
    if response.status_code >= 500:
        return openai.InternalServerError(message, response=wire, body=body)
    kind = _STATUS_ERRORS.get(response.status_code, openai.APIStatusError)
    return kind(message, response=wire, body=body)


class StreamingChatOpenAI(ChatOpenAI):
    """A ``ChatOpenAI`` that streams plain chat completions without the openai SDK."""

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        client = self.http_async_client
        key = self.openai_api_key
        options = dict(kwargs, stream=True)
        if self._should_stream_usage(stream_usage, **kwargs):
            options["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, stop=stop, **options)
        if (
            not isinstance(client, httpx.AsyncClient)
            or not isinstance(key, SecretStr)
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
        async for generation in self._stream_wire(client, key, body, run_manager):
            yield generation

    async def _stream_wire(
        self,
        client: httpx.AsyncClient,
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
        url = f"{str(self.openai_api_base or 'https://api.openai.com/v1').rstrip('/')}"
        default_class: type[BaseMessageChunk] = AIMessageChunk
        async with aconnect_sse(
            client,
            "POST",
            f"{url}/chat/completions",
            content=orjson.dumps(body),
            headers=headers,
        ) as source:
            response = source.response
            if response.status_code >= 400:
                await response.aread()
                raise status_error(response)
            done = False
            async for event in source.aiter_sse():
                # Read on past [DONE] to the end of the body, as the SDK does: a response
                # closed early cannot go back to the pool, so the next call would connect anew.
                done = done or event.data.startswith("[DONE]")
                if done:
                    continue
                chunk = orjson.loads(event.data)
                if not isinstance(chunk, dict):
                    raise ValueError("a stream event is not a JSON object")
                if chunk.get("error"):
                    error = chunk["error"]
                    detail = error.get("message") if isinstance(error, dict) else error
                    request: Any = response.request
                    raise openai.APIError(
                        str(detail or "error event in the stream"), request, body=error
                    )
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
