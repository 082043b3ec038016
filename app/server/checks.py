"""Readiness: one cheap call to each engine, and whether this process can serve without it.

A pod is ready when it can answer requests. The checkpointer, the stores, the API state
and the key store are needed for every request. Search needs one of the two index engines
(with the other down, answers come from one engine, marked ``degraded``). The chat model
is needed only when ``llm.offline_fallback`` is off: with it on, turns are answered from
the passages while the model server is down. Every dependency is checked and reported
either way, so monitoring sees a dead model server on a pod that is still ready. An MCP
server whose tools the agent uses is never needed: without it the agent answers without
those tools.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.mcp import SERVER_KEY, probe, reason
from app.server.services import Services
from app.settings import McpServerSettings

__all__ = ["Report", "readiness"]

_TIMEOUT_S = 5.0

Status = Literal["ready", "degraded", "not_ready"]


@dataclass(frozen=True)
class Report:
    """Each dependency's health, and what it means for serving."""

    checks: dict[str, dict[str, str]]
    """Per dependency: ``{"status": "ok"}`` or ``{"status": "error", "reason": ...}``."""
    status: Status
    """``ready``: all ok; ``degraded``: serving without some; ``not_ready``: cannot serve."""
    blocking: list[str]
    """The failing dependencies this process cannot serve without."""
    degraded: list[str]
    """The failing dependencies it serves without."""


async def _timed(check: Callable[[], Awaitable[Any]]) -> dict[str, str]:
    try:
        await asyncio.wait_for(check(), _TIMEOUT_S)
    except TimeoutError:
        return {"status": "error", "reason": f"no answer within {_TIMEOUT_S:g} s"}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return {"status": "error", "reason": reason(exc)}
    return {"status": "ok"}


async def _model_endpoints(services: Services) -> None:
    llm = services.settings.llm
    urls = {e.base_url or llm.base_url for e in [*llm.tiers.values(), *llm.fallbacks]}
    urls.add(llm.base_url)
    async with httpx.AsyncClient(timeout=_TIMEOUT_S) as client:
        for url in sorted(u for u in urls if u):
            # Any HTTP answer but a server error means the endpoint is up.
            response = await client.get(url.rstrip("/") + "/models")
            if response.status_code >= 500:
                raise ConnectionError(f"HTTP {response.status_code}")


class ToolsNotLoadedError(RuntimeError):
    """An MCP server answers now, but was down at start-up: its tools are not offered."""


async def _mcp_server(services: Services, server: McpServerSettings) -> None:
    """Reach an MCP server and check that the agent offers its tools (a restart loads them)."""
    names = await probe(server, min(_TIMEOUT_S, services.settings.mcp.connect_timeout_s))
    wanted = [n for n in names if server.tools is None or n in server.tools]
    offered = any(
        (tool.metadata or {}).get(SERVER_KEY) == server.name
        for tool in services.resources.tools.tools
    )
    if wanted and not offered:
        raise ToolsNotLoadedError


def _verdict(
    checks: dict[str, dict[str, str]], core: list[str], vector: list[str], keyword: str
) -> tuple[list[str], list[str]]:
    """Split the failing checks into those that stop serving and those served around."""
    failing = {name for name, result in checks.items() if result["status"] != "ok"}
    blocking = [name for name in core if name in failing]
    if failing.intersection(vector) and keyword in failing:
        blocking += [name for name in [*vector, keyword] if name in failing]
    return blocking, sorted(failing.difference(blocking))


async def readiness(services: Services) -> Report:
    """Check every configured engine concurrently and decide whether this process can serve."""
    retriever = services.resources.retriever
    settings = services.settings
    vector = f"vector_index ({settings.retrieval.vector_backend})"
    keyword = f"keyword_index ({settings.retrieval.keyword_backend})"
    embedder = f"embedder ({settings.embed.provider})"
    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        vector: lambda: retriever.ping("vector"),
        keyword: lambda: retriever.ping("keyword"),
        embedder: lambda: asyncio.to_thread(retriever.embedder.embed_query, "ready"),
        f"checkpointer ({settings.checkpoint.backend})": lambda: services.checkpointer.aget_tuple(
            {"configurable": {"thread_id": "readyz"}}
        ),
        f"memory_store ({settings.memory.backend})": lambda: services.store.asearch(
            ("readyz",), limit=1
        ),
        "api_state (" + ("redis" if settings.server.redis_url else "memory") + ")": lambda: (
            services.state.get("readyz")
        ),
        "thread_index": lambda: services.threads.get("readyz", "readyz"),
    }
    if services.keys is not None:
        keys = services.keys
        checks["api_keys"] = lambda: asyncio.to_thread(keys.find, "000000000000")
    if settings.llm.base_url:
        checks["chat_model"] = lambda: _model_endpoints(services)
    # The agent answers without an MCP server's tools: never blocking, so never in ``core``.
    mcp = {f"mcp_server ({server.name})": server for server in settings.mcp.servers}
    for name, server in mcp.items():
        checks[name] = functools.partial(_mcp_server, services, server)
    names = list(checks)
    results = dict(
        zip(names, await asyncio.gather(*(_timed(checks[n]) for n in names)), strict=True)
    )
    searching = {vector, keyword, embedder}
    core = [n for n in names if n not in searching and n != "chat_model" and n not in mcp]
    if not settings.llm.offline_fallback:
        core.append("chat_model")
    blocking, degraded = _verdict(results, core, [vector, embedder], keyword)
    status: Status = "not_ready" if blocking else "degraded" if degraded else "ready"
    return Report(results, status, blocking, degraded)
