"""The configured sources of the caller's tenant and their syncs, for administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from app.server.deps import AdminUser, ServicesDep
from app.server.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from app.sources.schedule import UnknownSourceError

__all__ = ["router"]

router = APIRouter(prefix="/v1/sources", tags=["sources"], responses=ERROR_RESPONSES)

NamePath = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="The source's name."),
]


def _unknown(name: str) -> ApiError:
    return ApiError(404, f"no source named {name!r}", "source_not_found", param="name")


@router.get("", summary="Your tenant's sources and their syncs")
async def list_sources(services: ServicesDep, principal: AdminUser) -> Any:
    """Each source's state (``running``), progress, last run and next scheduled run."""
    return {"sources": await services.sources.statuses(tenant_id=principal.tenant_id)}


@router.get("/{name}", responses=NOT_FOUND, summary="One source's sync status")
async def show_source(name: NamePath, services: ServicesDep, principal: AdminUser) -> Any:
    """The source's state, progress, last run (counts, error, seconds) and next run."""
    try:
        return await services.sources.status(name, tenant_id=principal.tenant_id)
    except UnknownSourceError:
        raise _unknown(name) from None


@router.post(
    "/{name}/sync",
    status_code=202,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Sync a source now",
)
async def sync_source(
    name: NamePath,
    services: ServicesDep,
    principal: AdminUser,
    full: Annotated[bool, Query(description="Read every item, not only changed ones.")] = False,
) -> Any:
    """Start a sync (202); poll ``GET /v1/sources/{name}``. 409 while one runs anywhere."""
    try:
        started = await services.sources.trigger(name, tenant_id=principal.tenant_id, full=full)
    except UnknownSourceError:
        raise _unknown(name) from None
    if not started:
        raise ApiError(409, f"a sync of source {name!r} is already running", "sync_running")
    status_url = f"/v1/sources/{name}"
    return JSONResponse(
        {"source": name, "status": "started", "status_url": status_url},
        status_code=202,
        headers={"Location": status_url},
    )
