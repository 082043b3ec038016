"""Dependency aliases of the routes: the process's services and the authenticated caller.

They are coroutines because FastAPI runs a plain ``def`` dependency in its thread pool:
three thread hops a request for work that takes microseconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.server.auth import Principal
from app.server.end_users import END_USERS, acting_for, end_user_of
from app.server.errors import ApiError
from app.server.middleware import throttle
from app.server.services import Services

__all__ = ["AdminUser", "ChatUser", "IngestUser", "ServicesDep", "caller", "owner_of"]


async def _services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "the API is starting", "starting")
    return services


async def caller(request: Request, services: Services) -> Principal:
    """Return who a request acts as: its key's principal, or the end user it names.

    A key with the ``end_users`` scope is throttled here, per end user (the middleware
    throttles every other key as a whole); any route outside these dependencies that
    takes identity must call this too.

    Raises:
        ApiError: 401 without a principal, 400 for a bad or forbidden end user, 429.
    """
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # the middleware sets it on every /v1 path
        raise ApiError(401, "not authenticated", "missing_api_key")
    named = await end_user_of(request, services.settings.server.end_user_headers)
    acting = acting_for(principal, named)
    if END_USERS in principal.scopes:
        holder = "this end user" if acting.end_user is not None else "this API key"
        await throttle(services, f"user:{owner_of(acting)}", holder)
    return acting


async def _principal(
    request: Request, services: Annotated[Services, Depends(_services)]
) -> Principal:
    return await caller(request, services)


async def _chat_user(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require("chat")
    return principal


async def _ingest_user(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require("ingest")
    return principal


async def _admin_user(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require("admin")
    return principal


ServicesDep = Annotated[Services, Depends(_services)]
ChatUser = Annotated[Principal, Depends(_chat_user)]
"""The caller, with the ``chat`` scope (else 403)."""
IngestUser = Annotated[Principal, Depends(_ingest_user)]
"""The caller, with the ``ingest`` scope (else 403)."""
AdminUser = Annotated[Principal, Depends(_admin_user)]
"""The caller, with the ``admin`` scope (else 403)."""


def owner_of(principal: Principal) -> str:
    """The owner key of a principal's threads, runs and jobs (an end user's own, too)."""
    return f"{principal.tenant_id}/{principal.user_id}"
