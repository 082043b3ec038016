"""Threads of the LangGraph API over ragent's conversations: the same threads as ``/v1``.

A thread belongs to the API key's tenant and user (its checkpoint key is
``<tenant>/<user>/<thread>``, see :func:`~app.conversations.thread_key`); it is listed in
the thread index (:mod:`app.server.thread_index`), and another user's id answers 404.
Thread metadata lives in the shared state for ``server.jobs_ttl_s``. The state is read
from the profile's checkpointer (SQLite or Redis).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from app.context import Context
from app.conversations import thread_config, thread_key
from app.server.auth import Principal
from app.server.chat_turns import lock_key
from app.server.deps import ChatUser, ServicesDep, owner_of
from app.server.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.platform.bodies import (
    HistoryQuery,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)
from app.server.platform.encoding import iso, jsonable, snapshot_json
from app.server.platform.guarded import guarded
from app.server.platform.run_records import RunBook
from app.server.schemas import ID_PATTERN
from app.server.services import Services
from app.server.thread_index import ThreadInfo

__all__ = ["ThreadId", "identity", "own_thread", "router", "thread_json"]

router = APIRouter(
    prefix="/threads",
    tags=["threads (LangGraph API)"],
    responses={**ERROR_RESPONSES, **NOT_FOUND, **CONFLICT},
)

ThreadId = Annotated[str, Path(pattern=ID_PATTERN)]
_MAX_METADATA_BYTES = 16_384


def identity(principal: Principal) -> Context:
    """The context that scopes a caller's threads (its identity, default knobs)."""
    return Context(
        tenant_id=principal.tenant_id, user_id=principal.user_id, acl_groups=list(principal.groups)
    )


async def own_thread(services: Services, principal: Principal, thread_id: str) -> ThreadInfo:
    """The caller's thread.

    Raises:
        ApiError: 404 when the caller has no such thread.
    """
    info = await services.threads.get(owner_of(principal), thread_id)
    if info is None:
        raise ApiError(404, f"no thread {thread_id!r}", "not_found")
    return info


def _metadata_key(principal: Principal, thread_id: str) -> str:
    return f"lgthread:{owner_of(principal)}/{thread_id}"


async def _metadata(services: Services, principal: Principal, thread_id: str) -> dict[str, Any]:
    raw = await services.state.get(_metadata_key(principal, thread_id))
    return dict(json.loads(raw)) if raw else {"graph_id": "agent"}


async def _set_metadata(
    services: Services, principal: Principal, thread_id: str, metadata: dict[str, Any]
) -> None:
    raw = json.dumps(metadata, ensure_ascii=False)
    if len(raw.encode()) > _MAX_METADATA_BYTES:
        raise ApiError(400, "metadata: larger than 16 KiB", "invalid_request", param="metadata")
    ttl = services.settings.server.jobs_ttl_s
    await services.state.set(_metadata_key(principal, thread_id), raw, ttl)


async def thread_json(services: Services, principal: Principal, info: ThreadInfo) -> dict[str, Any]:
    """The API's ``Thread``: its status, values and waiting interrupts."""
    snapshot = await services.agent.aget_state(thread_config(identity(principal), info.thread_id))
    busy = await services.state.get(lock_key(principal, info.thread_id)) is not None
    interrupts: dict[str, list[dict[str, Any]]] = {}
    for task in snapshot.tasks:
        if task.interrupts:
            interrupts[task.id] = [
                {"value": guarded(jsonable(i.value)), "id": i.id} for i in task.interrupts
            ]
    status = "busy" if busy else "interrupted" if snapshot.interrupts else "idle"
    return {
        "thread_id": info.thread_id,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "metadata": await _metadata(services, principal, info.thread_id),
        "status": status,
        "values": guarded(jsonable(snapshot.values or {})),
        "interrupts": interrupts,
        "config": {},
    }


@router.post("", summary="Create a thread")
async def create_thread(
    services: ServicesDep, principal: ChatUser, body: Annotated[ThreadCreate | None, Body()] = None
) -> dict[str, Any]:
    """A new, empty thread of the caller (``thread_id`` may be given)."""
    body = body or ThreadCreate()
    thread_id = body.thread_id or str(uuid.uuid4())
    owner = owner_of(principal)
    existing = await services.threads.get(owner, thread_id)
    if existing is not None:
        if body.if_exists == "raise":
            raise ApiError(409, f"thread {thread_id!r} exists", "thread_exists")
        return await thread_json(services, principal, existing)
    await _set_metadata(services, principal, thread_id, {"graph_id": "agent", **body.metadata})
    await services.threads.touch(owner, thread_id, "")
    return await thread_json(services, principal, await own_thread(services, principal, thread_id))


@router.post("/search", summary="Your threads, newest first")
async def search_threads(
    services: ServicesDep, principal: ChatUser, body: Annotated[ThreadSearch | None, Body()] = None
) -> list[dict[str, Any]]:
    """Filter by ``ids``, ``metadata`` (every key equal) and ``status``; page with limit/offset."""
    query = body or ThreadSearch()
    listed = await services.threads.list(owner_of(principal), limit=1000, before=None)
    found: list[dict[str, Any]] = []
    for info in listed:
        if query.ids is not None and info.thread_id not in query.ids:
            continue
        if query.metadata:  # checked before the thread's state is read
            metadata = await _metadata(services, principal, info.thread_id)
            if any(metadata.get(k) != v for k, v in query.metadata.items()):
                continue
        thread = await thread_json(services, principal, info)
        if query.status is not None and thread["status"] != query.status:
            continue
        found.append(thread)
        if len(found) >= query.offset + query.limit:
            break
    return found[query.offset :]


@router.get("/{thread_id}", summary="One thread")
async def get_thread(thread_id: ThreadId, services: ServicesDep, principal: ChatUser) -> Any:
    """The thread, with its values and status."""
    return await thread_json(services, principal, await own_thread(services, principal, thread_id))


@router.patch("/{thread_id}", summary="Merge into a thread's metadata")
async def patch_thread(
    thread_id: ThreadId, body: ThreadPatch, services: ServicesDep, principal: ChatUser
) -> Any:
    """The thread, with the new metadata merged in."""
    info = await own_thread(services, principal, thread_id)
    merged = {**await _metadata(services, principal, thread_id), **body.metadata}
    await _set_metadata(services, principal, thread_id, merged)
    return await thread_json(services, principal, info)


@router.delete("/{thread_id}", status_code=204, summary="Delete a thread")
async def delete_thread(thread_id: ThreadId, services: ServicesDep, principal: ChatUser) -> None:
    """Delete its checkpoints, its entry in your list, its metadata and its runs' list."""
    await own_thread(services, principal, thread_id)
    await services.checkpointer.adelete_thread(thread_key(identity(principal), thread_id))
    await services.threads.remove(owner_of(principal), thread_id)
    await services.state.delete(_metadata_key(principal, thread_id))
    await RunBook(services.state, ttl_s=1).forget_thread(owner_of(principal), thread_id)


def _at(principal: Principal, thread_id: str, checkpoint_id: str | None) -> RunnableConfig:
    config = thread_config(identity(principal), thread_id)
    if checkpoint_id:
        config["configurable"]["checkpoint_id"] = checkpoint_id
    return config


@router.get("/{thread_id}/state", summary="A thread's state")
async def get_state(
    thread_id: ThreadId,
    services: ServicesDep,
    principal: ChatUser,
    subgraphs: Annotated[bool, Query()] = False,
) -> Any:
    """The latest checkpoint's values, next nodes, tasks and waiting interrupts."""
    await own_thread(services, principal, thread_id)
    snapshot = await services.agent.aget_state(_at(principal, thread_id, None))
    return snapshot_json(snapshot, thread_id)


@router.get("/{thread_id}/state/{checkpoint_id}", summary="A thread's state at a checkpoint")
async def get_state_at(
    thread_id: ThreadId, checkpoint_id: ThreadId, services: ServicesDep, principal: ChatUser
) -> Any:
    """The state as that checkpoint left it."""
    await own_thread(services, principal, thread_id)
    snapshot = await services.agent.aget_state(_at(principal, thread_id, checkpoint_id))
    return snapshot_json(snapshot, thread_id)


def _messages(values: Any) -> list[BaseMessage]:
    """Messages a client may add to its thread: user and assistant text, no tool calls."""
    raw = values.get("messages") if isinstance(values, dict) else None
    if not isinstance(values, dict) or set(values) != {"messages"} or not isinstance(raw, list):
        raise ApiError(
            400,
            "values: only {'messages': [...]} may be written",
            "invalid_request",
            param="values",
        )
    out: list[BaseMessage] = []
    for item in raw[:100]:
        kind = item.get("type") or item.get("role") if isinstance(item, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, str):
            raise ApiError(400, "values.messages: content must be text", "invalid_request")
        if kind in {"human", "user"}:
            out.append(HumanMessage(content=content))
        elif kind in {"ai", "assistant"}:
            out.append(AIMessage(content=content))
        else:
            raise ApiError(
                400, "values.messages: only user and assistant messages", "invalid_request"
            )
    return out


@router.post("/{thread_id}/state", summary="Add messages to a thread")
async def update_state(
    thread_id: ThreadId, body: StateUpdate, services: ServicesDep, principal: ChatUser
) -> Any:
    """Append user and assistant text messages, as if a turn had ended with them."""
    await own_thread(services, principal, thread_id)
    messages = _messages(body.values)
    config = _at(principal, thread_id, None)
    if await services.state.get(lock_key(principal, thread_id)) is not None:
        raise ApiError(409, f"thread {thread_id!r} is running", "conversation_busy")
    if (await services.agent.aget_state(config)).next:
        raise ApiError(409, f"thread {thread_id!r} waits for its run to go on", "approval_pending")
    written = await services.agent.aupdate_state(
        config, {"messages": messages}, as_node="compress_memory"
    )
    return {
        "checkpoint": snapshot_json(await services.agent.aget_state(written), thread_id)[
            "checkpoint"
        ]
    }


async def _history(
    services: Services, principal: Principal, thread_id: str, query: HistoryQuery
) -> list[dict[str, Any]]:
    await own_thread(services, principal, thread_id)
    before = query.before
    if isinstance(before, dict):  # a checkpoint, or a config holding one (as LangGraph takes)
        before = before.get("configurable", before).get("checkpoint_id")
    before_id = before if isinstance(before, str) else None
    before_config = _at(principal, thread_id, before_id) if before_id else None
    config = _at(principal, thread_id, None)
    return [
        snapshot_json(snapshot, thread_id)
        async for snapshot in services.agent.aget_state_history(
            config, limit=query.limit, before=before_config
        )
    ]


@router.post("/{thread_id}/history", summary="A thread's past states, newest first")
async def post_history(
    thread_id: ThreadId,
    services: ServicesDep,
    principal: ChatUser,
    body: Annotated[HistoryQuery | None, Body()] = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` states, before the ``before`` checkpoint if given."""
    return await _history(services, principal, thread_id, body or HistoryQuery())


@router.get("/{thread_id}/history", summary="A thread's past states, newest first")
async def get_history(
    thread_id: ThreadId,
    services: ServicesDep,
    principal: ChatUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> list[dict[str, Any]]:
    """Up to ``limit`` states."""
    return await _history(services, principal, thread_id, HistoryQuery(limit=limit))
