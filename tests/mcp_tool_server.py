"""A tiny MCP server for tests, built with the SDK's FastMCP: stdio or streamable HTTP.

``python -m tests.mcp_tool_server stdio`` or ``... http PORT``. Every call that reaches
a tool is appended to the file ``$MCP_TEST_LOG`` names (one JSON line), so a test can
tell whether a call got through.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.responses import PlainTextResponse

server = FastMCP("test-tools", stateless_http=True, json_response=True, log_level="WARNING")


def _log(tool: str, **args: object) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"tool": tool, "args": args}) + "\n")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> str:
    """Add two whole numbers."""
    _log("add", a=a, b=b)
    return f"The sum is {a + b}."


@server.tool()
def save_memo(title: Annotated[str, Field(max_length=80)], body: str) -> str:
    """Save a memo on the remote board (changes stored data)."""
    _log("save_memo", title=title, body=body)
    return f"Saved memo {title!r}."


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
async def wait(seconds: float) -> str:
    """Wait a number of seconds, then say so."""
    _log("wait", seconds=seconds)
    await asyncio.sleep(seconds)
    return "Done waiting."


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def big(size: int) -> str:
    """Return ``size`` characters."""
    return "x" * size


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def broken() -> str:
    """Always fails."""
    raise ValueError("the board is closed today")


@server.custom_route("/healthz", methods=["GET"])
async def healthz(request: Request) -> PlainTextResponse:
    """Liveness, for the test that waits on the HTTP server."""
    return PlainTextResponse("ok")


def main() -> None:
    """Serve over stdio, or over streamable HTTP on 127.0.0.1:PORT at /mcp."""
    if sys.argv[1] == "http":
        server.settings.host = "127.0.0.1"
        server.settings.port = int(sys.argv[2])
        server.run("streamable-http")
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
