"""Readiness: one cheap call to each engine the deployment is configured with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from app.server.services import Services

__all__ = ["readiness"]

_TIMEOUT_S = 5.0


async def _timed(check: Callable[[], Awaitable[Any]]) -> dict[str, str]:
    try:
        await asyncio.wait_for(check(), _TIMEOUT_S)
    except TimeoutError:
        return {"status": "error", "reason": f"no answer within {_TIMEOUT_S:g} s"}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return {"status": "error", "reason": type(exc).__name__}
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


async def readiness(services: Services) -> dict[str, dict[str, str]]:
    """Check every configured engine concurrently; each entry says ``ok`` or why not."""
    retriever = services.resources.retriever
    settings = services.settings
    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        f"vector_index ({settings.retrieval.vector_backend})": lambda: retriever.ping("vector"),
        f"keyword_index ({settings.retrieval.keyword_backend})": lambda: retriever.ping("keyword"),
        f"embedder ({settings.embed.provider})": lambda: asyncio.to_thread(
            retriever.embedder.embed_query, "ready"
        ),
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
    names = list(checks)
    results = await asyncio.gather(*(_timed(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))
