"""Quota usage of the caller's tenant, for administrators (the ``admin`` scope)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.server.deps import AdminUser, ServicesDep
from app.server.errors import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/v1/quota", tags=["quota"], responses=ERROR_RESPONSES)

UserQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+/-]{0,256}$",
        description="One user of the tenant; left out: the tenant and all its users.",
    ),
]


@router.get("", summary="Your tenant's usage in the current quota period")
async def show_usage(services: ServicesDep, principal: AdminUser) -> Any:
    """Requests and model tokens of the tenant and each of its users, with the limits."""
    return await services.quotas.usage(principal.tenant_id)


@router.delete("", summary="Reset your tenant's (or one user's) usage")
async def reset_usage(services: ServicesDep, principal: AdminUser, user: UserQuery = None) -> Any:
    """Zero the current period's counters; the tenant's users' too unless ``user`` names one."""
    reset = await services.quotas.reset(principal.tenant_id, user)
    return {"tenant": principal.tenant_id, "user": user, "reset": reset}
