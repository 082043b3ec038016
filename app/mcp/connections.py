"""The adapters' connection for each configured server, with secrets from the environment."""

from __future__ import annotations

import asyncio
import os

from langchain_mcp_adapters.sessions import (
    Connection,
    StdioConnection,
    StreamableHttpConnection,
    create_session,
)

from app.settings import McpServerSettings

__all__ = ["McpUnavailableError", "connection_for", "probe", "reason"]


class McpUnavailableError(RuntimeError):
    """An MCP server cannot be reached as configured (a variable it needs is unset)."""


def reason(exc: BaseException) -> str:
    """Say why a server could not be reached, without echoing what it sent.

    The first error inside an exception group (the SDK's task groups raise them) is
    named; only this module's own errors keep their message.
    """
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpUnavailableError):
        return str(exc)
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
        the environment).

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
