"""The LangGraph Platform (Agent Protocol) API on ``ragent serve``, for Studio and the SDK.

Assistants, threads, runs (background, wait, stream, join, cancel) and the store, as
``langgraph_sdk`` calls them, over ragent's own engines: the checkpointer and thread index
of the profile, the run log of ``/v1`` streams, the memory store, API keys, tenancy and
limits. ``langgraph dev`` serves its own implementation of these routes; the app it
mounts leaves them out (see :mod:`app.server.app`).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.server.platform import assistants, runs, store, threads
from app.server.platform.cors import BrowserCors

__all__ = ["KEY_PATHS", "OPEN_PATHS", "ROUTERS", "BrowserCors"]

OPEN_PATHS = ("/ok", "/info")
"""Paths of the API that need no key (as on LangGraph's server)."""
KEY_PATHS = ("/assistants", "/threads", "/runs", "/store")
"""Paths of the API that need an API key (``X-Api-Key``, as the SDK sends it, or Bearer)."""
ROUTERS: tuple[APIRouter, ...] = (
    assistants.meta,
    assistants.router,
    threads.router,
    runs.router,
    runs.stateless,
    store.router,
)
