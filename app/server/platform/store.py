"""The store API over ragent's long-term store, each caller in its own namespaces.

A caller's namespaces are ``(kind, tenant label, user label, ...)``
(:func:`~app.memory.namespaces.namespace`): the agent keeps ``memories`` and ``notes``
there. Every read and write names a namespace inside the caller's own; another's reads as
404 (get) or nothing (search), and a write there is a 403. Searches and listings are
narrowed to the caller's namespaces.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from langgraph.store.base import Item

from app.memory.namespaces import tenant_label, user_label
from app.server.auth import Principal
from app.server.deps import ChatUser, ServicesDep
from app.server.errors import ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.platform.bodies import ItemDelete, ItemPut, ItemSearch, NamespaceList
from app.server.platform.encoding import jsonable

__all__ = ["router"]

router = APIRouter(
    prefix="/store", tags=["store (LangGraph API)"], responses={**ERROR_RESPONSES, **NOT_FOUND}
)

_MAX_LABEL = 256
_MAX_VALUE_CHARS = 65_536


def _scope(principal: Principal) -> tuple[str, str]:
    return tenant_label(principal.tenant_id), user_label(principal.tenant_id, principal.user_id)


def _labels(namespace: list[str], param: str) -> tuple[str, ...]:
    for label in namespace:
        if not label or "." in label or len(label) > _MAX_LABEL:
            raise ApiError(
                400,
                f"{param}: labels are 1 to {_MAX_LABEL} characters without '.'",
                "invalid_namespace",
                param=param,
            )
    return tuple(namespace)


def _mine(principal: Principal, namespace: tuple[str, ...]) -> bool:
    return len(namespace) >= 3 and namespace[1:3] == _scope(principal)


def _item(item: Item) -> dict[str, Any]:
    out = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": jsonable(item.value),
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    score = getattr(item, "score", None)
    if score is not None:
        out["score"] = score
    return out


@router.put("/items", status_code=204, summary="Write an item in one of your namespaces")
async def put_item(body: ItemPut, services: ServicesDep, principal: ChatUser) -> Response:
    """Create or replace the item; ``index`` as the store's ``put`` takes it."""
    namespace = _labels(body.namespace, "namespace")
    if not _mine(principal, namespace):
        raise ApiError(
            403,
            "namespace: write only under (kind, your tenant label, your user label)",
            "forbidden_namespace",
            param="namespace",
        )
    if len(json.dumps(body.value)) > _MAX_VALUE_CHARS:
        raise ApiError(400, "value: larger than 64 KiB", "invalid_request", param="value")
    text = body.value.get("text")
    if text is not None and not isinstance(text, str):
        raise ApiError(400, "value.text: must be text (it is embedded)", "invalid_request")
    # The embedded fields are the store's ("text"); a client may only turn embedding off.
    await services.store.aput(
        namespace, body.key, body.value, index=False if body.index is False else None
    )
    return Response(status_code=204)


@router.get("/items", summary="Read an item")
async def get_item(
    services: ServicesDep,
    principal: ChatUser,
    key: Annotated[str, Query(min_length=1, max_length=256)],
    namespace: Annotated[str, Query(max_length=2600)] = "",
) -> Any:
    """The item; 404 when there is none in your namespaces."""
    labels = _labels(namespace.split(".") if namespace else [], "namespace")
    found = await services.store.aget(labels, key) if _mine(principal, labels) else None
    if found is None:
        raise ApiError(404, "no such item", "not_found")
    return _item(found)


@router.delete("/items", status_code=204, summary="Delete an item")
async def delete_item(body: ItemDelete, services: ServicesDep, principal: ChatUser) -> Response:
    """Delete it; 404 when there is none in your namespaces."""
    namespace = _labels(body.namespace, "namespace")
    if not _mine(principal, namespace) or await services.store.aget(namespace, body.key) is None:
        raise ApiError(404, "no such item", "not_found")
    await services.store.adelete(namespace, body.key)
    return Response(status_code=204)


@router.post("/items/search", summary="Search your items")
async def search_items(
    services: ServicesDep, principal: ChatUser, body: Annotated[ItemSearch | None, Body()] = None
) -> dict[str, Any]:
    """Items under ``namespace_prefix`` (at least the kind, inside your namespaces)."""
    query = body or ItemSearch()
    prefix = _labels(query.namespace_prefix, "namespace_prefix")
    if not prefix:
        raise ApiError(
            400,
            "namespace_prefix: name at least the kind",
            "invalid_request",
            param="namespace_prefix",
        )
    scope = _scope(principal)
    if prefix[1:3] != scope[: len(prefix[1:3])]:
        return {"items": []}
    narrowed = (prefix[0], *scope, *prefix[3:])
    try:
        found = await services.store.asearch(
            narrowed, query=query.query, filter=query.filter, limit=query.limit, offset=query.offset
        )
    except (TypeError, ValueError):
        raise ApiError(
            400, "filter: not a filter the store takes", "invalid_request", param="filter"
        ) from None
    return {"items": [_item(item) for item in found]}


@router.post("/namespaces", summary="Your namespaces")
async def list_namespaces(
    services: ServicesDep,
    principal: ChatUser,
    body: Annotated[NamespaceList | None, Body()] = None,
) -> dict[str, Any]:
    """Namespaces under ``prefix`` (default: all of yours)."""
    query = body or NamespaceList()
    prefix = _labels(query.prefix or [], "prefix")
    scope = _scope(principal)
    if prefix[1:3] != scope[: len(prefix[1:3])]:
        return {"namespaces": []}
    narrowed = (prefix[0] if prefix else "*", *scope, *prefix[3:])
    found = await services.store.alist_namespaces(
        prefix=narrowed,
        suffix=_labels(query.suffix, "suffix") if query.suffix else None,
        max_depth=query.max_depth,
        limit=query.limit,
        offset=query.offset,
    )
    return {"namespaces": [list(ns) for ns in found if _mine(principal, ns)]}
