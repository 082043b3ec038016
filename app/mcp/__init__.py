"""MCP servers' tools as agent tools: connections from the settings, loading, probing.

Tools are listed once at start-up; each call opens its own session (the adapters'
default), so a server that restarts is reached again on the next call. ragent's own MCP
endpoint lives with the HTTP API (:mod:`app.server.mcp_endpoint`).
"""

from app.mcp.connections import McpUnavailableError, connection_for, probe, reason
from app.mcp.tools import SERVER_KEY, aload_tools, load_tools

__all__ = [
    "SERVER_KEY",
    "McpUnavailableError",
    "aload_tools",
    "connection_for",
    "load_tools",
    "probe",
    "reason",
]
