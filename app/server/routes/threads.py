"""Threads (conversations) of the caller: list, history, delete, and resume after approval.

A thread belongs to the API key's tenant and user: its checkpoint key is
``<tenant>/<user>/<thread>``, so another user's id names a different, empty thread, and
every route answers 404 for it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from app.context import Context
from app.conversations import thread_config, thread_key
from app.server.auth import Principal
from app.server.chat_turns import run_json, run_stream
from app.server.completions import Turn
from app.server.deps import ChatUser, ServicesDep, owner_of
from app.server.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.idempotency import idempotent
from app.server.schemas import ID_PATTERN, ChatCompletion, ResumeRequest
from app.server.services import Services
from app.turns import waiting

__all__ = ["router"]

router = APIRouter(prefix="/v1/threads", tags=["threads"], responses=ERROR_RESPONSES)

ThreadId = Annotated[str, Path(pattern=ID_PATTERN)]


class ThreadList(BaseModel):
    """A page of threads, newest first."""

    object: str = "list"
    data: list[dict[str, Any]]
    has_more: bool


def _context(principal: Principal) -> Context:
    return Context(
        tenant_id=principal.tenant_id, user_id=principal.user_id, acl_groups=list(principal.groups)
    )


async def _own(services: Services, principal: Principal, thread_id: str) -> dict[str, Any]:
    info = await services.threads.get(owner_of(principal), thread_id)
    if info is None:
        raise ApiError(404, f"no conversation {thread_id!r}", "not_found")
    return info.as_dict()


def _message(message: BaseMessage) -> dict[str, Any] | None:
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": message.text}
    if isinstance(message, AIMessage):
        out: dict[str, Any] = {"role": "assistant", "content": message.text}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.get("id") or "",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                }
                for call in message.tool_calls
            ]
        return out
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    return None


@router.get("", response_model=ThreadList, summary="List your conversations")
async def list_threads(
    services: ServicesDep,
    principal: ChatUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[
        float | None, Query(ge=0, description="Only threads updated before this Unix time.")
    ] = None,
) -> ThreadList:
    """Conversations of the API key's user, most recently active first."""
    found = await services.threads.list(owner_of(principal), limit=limit + 1, before=before)
    return ThreadList(data=[t.as_dict() for t in found[:limit]], has_more=len(found) > limit)


@router.get("/{thread_id}", responses=NOT_FOUND, summary="A conversation's messages")
async def get_thread(thread_id: ThreadId, services: ServicesDep, principal: ChatUser) -> Any:
    """The thread with its messages, its last answer's citations and waiting tool calls."""
    info = await _own(services, principal, thread_id)
    snapshot = await services.agent.aget_state(thread_config(_context(principal), thread_id))
    values = snapshot.values or {}
    messages = [m for m in map(_message, values.get("messages", [])) if m is not None]
    approvals = await waiting(services.agent, context=_context(principal), thread_id=thread_id)
    return {
        **info,
        "messages": messages,
        "summary": values.get("summary", ""),
        "citations": values.get("citations", []),
        "approvals": approvals,
    }


@router.delete("/{thread_id}", responses=NOT_FOUND, summary="Delete a conversation")
async def delete_thread(thread_id: ThreadId, services: ServicesDep, principal: ChatUser) -> Any:
    """Delete the thread's checkpoints and its entry in your list."""
    await _own(services, principal, thread_id)
    await services.checkpointer.adelete_thread(thread_key(_context(principal), thread_id))
    await services.threads.remove(owner_of(principal), thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}


@router.post(
    "/{thread_id}/resume",
    response_model=None,
    responses={200: {"model": ChatCompletion}, **NOT_FOUND, **CONFLICT},
    summary="Approve or deny the tool calls a run waits on, and finish the run",
)
async def resume_thread(
    thread_id: ThreadId,
    body: ResumeRequest,
    request: Request,
    services: ServicesDep,
    principal: ChatUser,
) -> Response:
    """Continue a paused run; answers like ``/v1/chat/completions`` (JSON or stream)."""
    await _own(services, principal, thread_id)
    context = _context(principal)
    pending = await waiting(services.agent, context=context, thread_id=thread_id)
    if not pending:
        raise ApiError(
            409, f"conversation {thread_id!r} has no tool call waiting", "nothing_to_resume"
        )
    unknown = (
        set(body.decision) - {a["id"] for a in pending}
        if isinstance(body.decision, dict)
        else set()
    )
    if unknown:
        raise ApiError(
            400,
            f"decision: no waiting call {sorted(unknown)[0]!r}",
            "unknown_call",
            param="decision",
        )
    turn = Turn(
        thread_id=thread_id,
        question="",
        context=context,
        model="ragent",
        continues=True,
    )

    async def produce() -> Response:
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return await run_stream(
                services, principal, turn, include_usage=usage, decision=body.decision
            )
        return JSONResponse(await run_json(services, principal, turn, decision=body.decision))

    return await idempotent(request, services, principal, produce)
