"""The caller's long-term memories (and notes): list and delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from app.memory.longterm import MemoryBank
from app.server.deps import ChatUser, ServicesDep
from app.server.errors import ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/v1/memories", tags=["memories"], responses=ERROR_RESPONSES)

KindQuery = Annotated[
    Literal["memories", "notes"],
    Query(description="memories (facts recalled in answers) or notes (saved by create_note)"),
]


def _bank(services: Services, kind: Literal["memories", "notes"]) -> MemoryBank:
    return MemoryBank(services.store, services.settings.memory, kind)


@router.get("", summary="What ragent remembers about you")
async def list_memories(
    services: ServicesDep, principal: ChatUser, kind: KindQuery = "memories"
) -> Any:
    """The API key's user's memories (or notes), newest first."""
    found = await _bank(services, kind).list(principal.tenant_id, principal.user_id)
    return {"object": "list", "kind": kind, "data": [m.as_dict() for m in found]}


@router.delete("/{memory_id}", responses=NOT_FOUND, summary="Forget one memory")
async def delete_memory(
    memory_id: Annotated[str, Path(min_length=1, max_length=128)],
    services: ServicesDep,
    principal: ChatUser,
    kind: KindQuery = "memories",
) -> Any:
    """Delete one of your memories (or notes) by id."""
    bank = _bank(services, kind)
    if not await bank.delete(principal.tenant_id, principal.user_id, memory_id):
        raise ApiError(
            404, f"no {kind[:-1] if kind == 'notes' else 'memory'} {memory_id!r}", "not_found"
        )
    return {"id": memory_id, "object": "memory.deleted", "deleted": True}


@router.delete("", summary="Forget everything")
async def clear_memories(
    services: ServicesDep, principal: ChatUser, kind: KindQuery = "memories"
) -> Any:
    """Delete all of your memories (or notes)."""
    count = await _bank(services, kind).clear(principal.tenant_id, principal.user_id)
    return {"object": "memory.deleted", "kind": kind, "deleted": count}
