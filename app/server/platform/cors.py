"""CORS for browser clients such as LangGraph Studio, for the origins ``server.cors_origins`` names.

Studio runs at ``https://smith.langchain.com`` and calls the server from the browser: each
call needs CORS, and a call to a server on a private address (``127.0.0.1``) needs
Private Network Access on its preflight (``Access-Control-Allow-Private-Network``). With
no origins configured, nothing changes. Preflights are answered before the API's guard,
which would ask them for a key they never carry.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BrowserCors"]

_EXPOSED = ["content-location", "location", "x-request-id", "retry-after"]


class BrowserCors:
    """Starlette's CORS with the configured origins, built on the first request."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app
        self._cors: ASGIApp | None = None
        self._origins: list[str] | None = None

    def _origins_of(self, scope: Scope) -> list[str]:
        if self._origins is None:
            services = getattr(scope["app"].state, "services", None)
            if services is None:  # starting: decide on a later request
                return []
            self._origins = list(services.settings.server.cors_origins)
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=self._origins,
                allow_methods=["*"],
                allow_headers=["*"],
                allow_private_network=True,
                expose_headers=_EXPOSED,
                max_age=600,
            )
        return self._origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, with CORS headers for an allowed origin."""
        if scope["type"] != "http" or not self._origins_of(scope) or self._cors is None:
            await self.app(scope, receive, send)
            return
        await self._cors(scope, receive, send)
