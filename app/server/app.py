"""The HTTP API: ``ragent serve`` runs :data:`app`, ``langgraph dev`` mounts :data:`mounted`.

Routes: OpenAI-compatible chat (``/v1/chat/completions``), threads, memories, ingestion
jobs, stream replay, MCP (``/mcp``), and ``/healthz``, ``/readyz``, ``/metrics``. Every
``/v1`` and ``/mcp`` request passes :class:`~app.server.middleware.ApiGuard` (size, key,
rate, timeout); every route refuses text that is not valid Unicode
(:mod:`app.server.text`); every error has the shape
``{"error": {"message", "type", "param", "code"}}``. OpenAPI: ``/docs``.

``ragent serve`` also speaks the LangGraph Platform API that Studio and ``langgraph_sdk``
use (:mod:`app.server.platform`: ``/assistants``, ``/threads``, ``/runs``, ``/store``),
under the same guard. ``langgraph dev`` serves those paths itself, and the routes of an
app it mounts come before its own, so :data:`mounted` (``langgraph.json``) leaves them out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.routing import Route

from app.observability.langsmith import setup_langsmith
from app.observability.tracing import setup_tracing
from app.server import errors
from app.server.mcp_endpoint import PATH as MCP_PATH
from app.server.mcp_endpoint import McpEndpoint, build_mcp
from app.server.middleware import ApiGuard
from app.server.platform import KEY_PATHS, OPEN_PATHS, ROUTERS, BrowserCors
from app.server.routes import chat, health, ingest, memories, quota, sources, threads
from app.server.services import open_services
from app.server.text import check_text
from app.server.workers.shared_metrics import retire_worker
from app.settings import get_settings

__all__ = ["app", "create_app", "mounted"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Set up tracing; open the engines, stores and the API's state once for the process."""
    settings = get_settings()
    setup_tracing(settings.observability)
    setup_langsmith(settings.observability)
    try:
        async with open_services(settings) as services, AsyncExitStack() as mcp:
            if settings.mcp.serve:
                app.state.mcp = build_mcp(settings)
                await mcp.enter_async_context(app.state.mcp.session_manager.run())
            app.state.services = services
            try:
                yield
            finally:
                del app.state.services
                app.state.mcp = None
    finally:
        retire_worker()


def create_app(*, platform: bool = True) -> FastAPI:
    """Build the API application; ``platform`` adds the LangGraph Platform API."""
    api = FastAPI(
        title="ragent",
        version="0.1.0",
        summary="Retrieval-augmented, tool-calling agent: OpenAI-compatible chat with "
        "citations, threads, memories and ingestion.",
        lifespan=lifespan,
        dependencies=[Depends(check_text)],  # every request's text is valid Unicode
    )
    errors.install(api)
    if platform:
        api.add_middleware(ApiGuard, open_paths=OPEN_PATHS, key_paths=(MCP_PATH, *KEY_PATHS))
    else:
        api.add_middleware(ApiGuard)
    for module in (chat, threads, memories, ingest, quota, sources, health):
        api.include_router(module.router)
    for router in ROUTERS if platform else ():
        api.include_router(router)
    if platform:  # outside the guard: a preflight carries no key
        api.add_middleware(BrowserCors)
    if platform:  # under ``langgraph dev``, /mcp is the LangGraph server's own
        # MCP over streamable HTTP (app.server.mcp_endpoint): a plain route, not in OpenAPI.
        api.router.routes.append(
            Route(MCP_PATH, McpEndpoint(), methods=["GET", "POST"], include_in_schema=False)
        )
    return api


app = create_app()
"""What ``ragent serve`` runs."""
mounted = create_app(platform=False)
"""What ``langgraph dev`` mounts (``langgraph.json``): ragent's routes, not LangGraph's."""
