"""No route hops to a thread for its dependencies or its own body by accident.

FastAPI runs a plain ``def`` dependency or endpoint in its thread pool. For the few
microseconds these take, the hop (a worker thread, two wake-ups, the GIL handed over
and back) cost more than the work, on every request.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.server.routes import chat, health, ingest, memories, threads


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from calls(sub)


def routes() -> list[APIRoute]:
    found = [
        route
        for module in (chat, threads, memories, ingest, health)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    assert len(found) >= 10, found  # the walk reaches the API's routes
    return found


def test_every_dependency_and_endpoint_is_a_coroutine() -> None:
    sync = [
        f"{route.path}: {call.__qualname__}"
        for route in routes()
        for call in (route.endpoint, *calls(route.dependant))
        if not inspect.iscoroutinefunction(call)
    ]
    assert sync == []


def test_the_chat_route_resolves_the_caller_and_the_services() -> None:
    [route] = [r for r in routes() if r.path == "/v1/chat/completions"]
    names = {call.__name__ for call in calls(route.dependant)}
    assert {"_services", "_principal", "_chat_user"} <= names
