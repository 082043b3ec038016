"""The ``mcp`` section: the ``/mcp`` endpoint, and the MCP servers whose tools the agent uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from app.config.section import Section

__all__ = ["McpServerSettings", "McpSettings"]

SERVER_NAME = r"^[A-Za-z][A-Za-z0-9-]{0,23}$"
"""A server's name prefixes its tools' names (``<server>_<tool>``), so it has no ``_``."""
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class McpServerSettings(Section):
    """One MCP server whose tools are offered to the model, named ``<name>_<tool>``.

    Secrets never sit in the config file: a stdio server gets only the variables that
    ``env_from`` names (and the MCP SDK's safe defaults such as ``PATH``), an HTTP
    server only the headers that ``headers_from_env`` fills from the environment.
    """

    name: str = Field(pattern=SERVER_NAME)
    transport: Literal["stdio", "http"]
    command: str | None = None
    """stdio: the executable that starts the server."""
    args: list[str] = Field(default_factory=list)
    """stdio: its arguments."""
    cwd: Path | None = None
    """stdio: its working directory (None: ragent's)."""
    env_from: list[str] = Field(default_factory=list)
    """stdio: names of ragent's environment variables passed on to the server."""
    url: str | None = None
    """http: the streamable HTTP endpoint, e.g. ``https://tools.example/mcp``."""
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    """http: request headers, each read from an environment variable, e.g.
    ``{"Authorization": "NOTES_MCP_AUTH"}``."""
    tools: list[str] | None = None
    """The server's tools to offer (its own names, unprefixed); None offers every one."""
    read_only: bool = False
    """Every tool of the server only reads; otherwise a tool counts as a write (it needs
    approval) unless the server marks it ``readOnlyHint``."""
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Longest a call to one of its tools may take (the run's tool timeout still applies)."""

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerSettings:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError(f"server {self.name!r}: a stdio server needs 'command'")
            if self.url or self.headers_from_env:
                raise ValueError(f"server {self.name!r}: 'url' and headers are for http servers")
        else:
            parts = urlsplit(self.url or "")
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError(f"server {self.name!r}: an http server needs an http(s) 'url'")
            if self.command or self.args or self.env_from:
                raise ValueError(f"server {self.name!r}: 'command' and env are for stdio servers")
        for variable in [*self.env_from, *self.headers_from_env.values()]:
            if not re.fullmatch(ENV_NAME, variable):
                raise ValueError(f"server {self.name!r}: {variable!r} is no variable name")
        return self


class McpSettings(Section):
    """Model Context Protocol: ragent as a server at ``/mcp``, and as a client of others."""

    serve: bool = True
    """Answer MCP clients at ``/mcp`` on ``ragent serve`` (same keys as ``/v1``)."""
    max_top_k: int = Field(default=20, ge=1, le=100)
    """The most passages ``search_knowledge`` returns to an MCP client."""
    servers: list[McpServerSettings] = Field(default_factory=list)
    """MCP servers whose tools the agent may call, under the same policies as its own."""
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Longest wait for one server's tool list at start-up; a server that misses it is
    left out (the agent runs without its tools) and reported by /healthz/dependencies."""
    max_tools: int = Field(default=64, ge=1, le=512)
    """The most tools taken from one server."""

    @model_validator(mode="after")
    def _unique_names(self) -> McpSettings:
        names = [server.name for server in self.servers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"servers: the name {name!r} is used twice")
        return self
