"""The adapters' connection for each configured server, with secrets from the environment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

import httpx
from langchain_mcp_adapters.sessions import (
    Connection,
    StdioConnection,
    StreamableHttpConnection,
    create_session,
)
from mcp.shared.exceptions import McpError

from app.settings import McpServerSettings

__all__ = [
    "MAX_RESPONSE_BYTES",
    "McpResponseTooLargeError",
    "McpUnavailableError",
    "connection_for",
    "probe",
    "reason",
    "transport_errors",
]

MAX_RESPONSE_BYTES: Final = 2_000_000
"""The most bytes one HTTP response of an MCP server may hold (the model sees far less)."""


class McpUnavailableError(RuntimeError):
    """An MCP server cannot be reached as configured (a variable it needs is unset)."""


class McpResponseTooLargeError(RuntimeError):
    """An MCP server sent more than :data:`MAX_RESPONSE_BYTES` in one response."""


class _CappedStream(httpx.AsyncByteStream):
    """A response body that fails once it passes ``cap`` bytes, so it never fills memory."""

    def __init__(self, stream: httpx.AsyncByteStream, cap: int) -> None:
        self._stream = stream
        self._cap = cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._stream:
            seen += len(chunk)
            if seen > self._cap:
                raise McpResponseTooLargeError(f"the response passed {self._cap} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _CappedTransport(httpx.AsyncBaseTransport):
    def __init__(self, cap: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._cap = cap

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, self._cap)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _capped_client(
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """The SDK's HTTP client, but each response is cut off past ``MAX_RESPONSE_BYTES``."""
    return httpx.AsyncClient(
        headers=headers,
        timeout=timeout or httpx.Timeout(30.0, read=300.0),
        auth=auth,
        transport=_CappedTransport(MAX_RESPONSE_BYTES),
    )


_seen: ContextVar[list[Exception] | None] = ContextVar("mcp_transport_errors", default=None)


async def _fail_on_transport_error(message: object) -> None:
    """Raise what the transport reports, which would otherwise leave a call waiting.

    The SDK hands a transport's errors (a response too large, a reply that is not
    JSON-RPC) to the session's message handler and keeps the request open; raising
    here ends the session, so the call fails at once. The SDK then reports only
    "Connection closed": the error is kept for :func:`transport_errors`.
    """
    if isinstance(message, Exception):
        if (seen := _seen.get()) is not None:
            seen.append(message)
        raise message


@contextmanager
def transport_errors() -> Iterator[list[Exception]]:
    """Collect the transport errors of the sessions opened inside the block."""
    seen: list[Exception] = []
    token = _seen.set(seen)
    try:
        yield seen
    finally:
        _seen.reset(token)


def reason(exc: BaseException) -> str:
    """Say why a server could not be reached, without echoing what it sent.

    The first error inside an exception group (the SDK's task groups raise them) is
    named; only this module's own errors and the SDK's ``McpError`` (what the model may
    read anyway) keep their message.
    """
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpUnavailableError | McpResponseTooLargeError):
        return str(exc)
    if isinstance(exc, McpError):  # the server's error, or the transport's, as the SDK saw it
        return f"{exc.error.message}"[:300]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return type(exc).__name__


def _environment(server: McpServerSettings, names: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in names:
        value = os.environ.get(name)
        if value is None:
            raise McpUnavailableError(
                f"MCP server {server.name!r} needs the environment variable {name}, which is unset"
            )
        values[name] = value
    return values


def connection_for(server: McpServerSettings) -> Connection:
    """Return the connection the adapters open a session with.

    Args:
        server: One entry of ``mcp.servers``.

    Returns:
        A stdio connection (the process gets only the variables ``env_from`` names, on
        top of the SDK's safe defaults) or a streamable HTTP one (headers filled from
        the environment; a response past ``MAX_RESPONSE_BYTES`` fails).

    Raises:
        McpUnavailableError: A variable the server needs is unset.
    """
    if server.transport == "stdio":
        assert server.command is not None  # enforced by the settings
        stdio = StdioConnection(
            transport="stdio",
            command=server.command,
            args=list(server.args),
            env=_environment(server, server.env_from),
            session_kwargs={"message_handler": _fail_on_transport_error},
        )
        if server.cwd is not None:
            stdio["cwd"] = server.cwd
        return stdio
    assert server.url is not None  # enforced by the settings
    secrets = _environment(server, list(server.headers_from_env.values()))
    headers = {header: secrets[var] for header, var in server.headers_from_env.items()}
    return StreamableHttpConnection(
        transport="streamable_http",
        url=server.url,
        headers=headers,
        timeout=min(server.timeout_s, 30.0),
        sse_read_timeout=server.timeout_s,
        httpx_client_factory=_capped_client,
        session_kwargs={"message_handler": _fail_on_transport_error},
    )


async def probe(server: McpServerSettings, timeout_s: float) -> list[str]:
    """Connect to a server and list its tools' names (its health check).

    Raises:
        McpUnavailableError: A variable the server needs is unset.
        TimeoutError: No tool list within ``timeout_s``.
        Exception: The transport's error when the server cannot be reached.
    """
    async with asyncio.timeout(timeout_s):
        async with create_session(connection_for(server)) as session:
            await session.initialize()
            listed = await session.list_tools()
    return [tool.name for tool in listed.tools]
