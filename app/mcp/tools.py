"""Load configured MCP servers' tools as agent tools, ready for the tool registry.

Each tool is renamed ``<server>_<tool>``, given a risk class (``read`` when the server
marks it ``readOnlyHint`` or the config says the server only reads, else ``write``, which
needs approval by default), bounded by the server's timeout, and answers plain text:
an MCP error result (``isError``) becomes a tool error the model reads. Arguments are
validated against the tool's ``inputSchema`` by the registry before the server sees
them. A server that cannot be reached at start-up is left out with a warning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.tools import load_mcp_tools

from app.mcp.connections import connection_for, reason, transport_errors
from app.settings import McpServerSettings, McpSettings
from app.tools.risk import with_risk

__all__ = ["SERVER_KEY", "aload_tools", "load_tools"]

log = logging.getLogger("ragent.mcp")

SERVER_KEY: Final = "mcp_server"
"""Metadata key naming the MCP server a tool comes from."""
_TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What OpenAI-compatible servers accept as a function name."""
_MAX_DESCRIPTION: Final = 1024
_MAX_SCHEMA_CHARS: Final = 20_000


def _text(content: Any) -> str:
    """The text of an MCP result: text blocks joined, other blocks named, not inlined."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            kind = block.get("type", "unknown") if isinstance(block, dict) else "unknown"
            parts.append(f"[{kind} content omitted]")
    return "\n".join(parts)


def _bounded(server: McpServerSettings, inner: BaseTool) -> BaseTool:
    """``inner`` (the adapters' tool) as an agent tool: prefixed, timed, plain text."""

    async def call(**arguments: Any) -> str:
        request = ToolCall(name=inner.name, args=arguments, id="mcp", type="tool_call")
        deadline = asyncio.timeout(server.timeout_s)
        with transport_errors() as seen:
            try:
                async with deadline:
                    message = await inner.ainvoke(request)
            except Exception as exc:
                # The SDK's task groups may wrap the cancellation in an exception group.
                if deadline.expired():
                    raise TimeoutError(
                        f"the MCP server {server.name!r} did not answer within "
                        f"{server.timeout_s:g} s"
                    ) from None
                why = reason(seen[0] if seen else exc)
                raise ToolException(f"the MCP server {server.name!r} failed: {why}") from None
        text = _text(message.content if isinstance(message, ToolMessage) else message)
        if isinstance(message, ToolMessage) and message.status == "error":
            raise ToolException(text or f"the MCP server {server.name!r} reported an error")
        return text

    read_only = server.read_only or (inner.metadata or {}).get("readOnlyHint") is True
    tool = StructuredTool(
        name=f"{server.name}_{inner.name}",
        description=(inner.description or inner.name)[:_MAX_DESCRIPTION],
        args_schema=inner.args_schema,
        coroutine=call,
        handle_tool_error=True,
        metadata={SERVER_KEY: server.name},
    )
    return with_risk(tool, "read" if read_only else "write")


def _usable(server: McpServerSettings, tool: BaseTool) -> bool:
    """Whether a listed tool can be offered: a valid name and a sound, small schema."""
    name = f"{server.name}_{tool.name}"
    schema = tool.args_schema
    problem = ""
    if not _TOOL_NAME.fullmatch(name):
        problem = "its name is not a valid function name"
    elif not isinstance(schema, dict) or schema.get("type") != "object":
        problem = "its input schema is not an object schema"
    elif len(json.dumps(schema)) > _MAX_SCHEMA_CHARS:
        problem = "its input schema is too large"
    else:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError:
            problem = "its input schema is invalid"
    if problem:
        log.warning("MCP server %r: tool %r left out: %s", server.name, tool.name[:80], problem)
    return not problem


async def _load_server(server: McpServerSettings, cfg: McpSettings) -> list[BaseTool]:
    try:
        async with asyncio.timeout(cfg.connect_timeout_s):
            listed = await load_mcp_tools(
                None, connection=connection_for(server), server_name=server.name
            )
    except Exception as exc:  # noqa: BLE001 - any failure leaves the server out
        log.warning(
            "MCP server %r is unavailable (%s); the agent runs without its tools",
            server.name,
            reason(exc),
        )
        return []
    wanted = set(server.tools) if server.tools is not None else None
    if wanted is not None and (missing := wanted - {t.name for t in listed}):
        log.warning("MCP server %r has no tool %s", server.name, ", ".join(sorted(missing)))
    chosen = [t for t in listed if (wanted is None or t.name in wanted) and _usable(server, t)]
    if len(chosen) > cfg.max_tools:
        log.warning(
            "MCP server %r: only its first %d tools are offered", server.name, cfg.max_tools
        )
    return [_bounded(server, tool) for tool in chosen[: cfg.max_tools]]


async def aload_tools(cfg: McpSettings) -> list[BaseTool]:
    """List every configured server's tools concurrently, each within the connect timeout.

    Args:
        cfg: The ``mcp`` settings.

    Returns:
        The agent tools, server by server in the configured order; a server that is
        down, too slow or misconfigured contributes none (a warning says why).
    """
    found: Sequence[list[BaseTool]] = await asyncio.gather(
        *(_load_server(server, cfg) for server in cfg.servers)
    )
    return [tool for tools in found for tool in tools]


def load_tools(cfg: McpSettings) -> list[BaseTool]:
    """:func:`aload_tools` for synchronous callers, on its own event loop in a thread.

    Safe to call from a thread that runs an event loop (it waits, at most about
    ``connect_timeout_s``). No servers configured: returns at once.
    """
    if not cfg.servers:
        return []
    with ThreadPoolExecutor(1, thread_name_prefix="mcp-tools") as pool:
        return pool.submit(asyncio.run, aload_tools(cfg)).result()
