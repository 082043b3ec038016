"""Assistants: the graphs of ``langgraph.json`` (``agent``, ``indexer``), one assistant each.

They are fixed by the deployment: search, get, graph and schemas are served; creating
or changing assistants is not.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field, PydanticUserError, TypeAdapter, create_model

from app.server.deps import ChatUser
from app.server.errors import ERROR_RESPONSES, NOT_FOUND, SERVER_RESPONSES
from app.server.platform.bodies import AssistantSearch
from app.server.platform.identity import ASSISTANTS, Assistant, assistant_of

__all__ = ["meta", "router"]

router = APIRouter(
    prefix="/assistants",
    tags=["assistants (LangGraph API)"],
    responses={**ERROR_RESPONSES, **NOT_FOUND},
)
meta = APIRouter(tags=["LangGraph API"], responses=SERVER_RESPONSES)


def _graph(assistant: Assistant) -> CompiledStateGraph[Any, Any, Any, Any]:
    if assistant.graph_id == "agent":
        from app.graphs.agent import graph

        return graph
    from app.graphs.indexer import graph as indexer

    return indexer


def _try(build: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    """A schema, or None where pydantic cannot draw one (as LangGraph's server answers)."""
    try:
        return build()
    except (PydanticUserError, TypeError, ValueError):
        return None


def _drawable(kind: Any) -> bool:
    return _try(lambda: TypeAdapter(kind).json_schema()) is not None


def _state_schema(graph: CompiledStateGraph[Any, Any, Any, Any]) -> dict[str, Any]:
    """The state's channels, each typed where pydantic can, else ``Any``."""
    fields: dict[str, Any] = {}
    for name in graph.stream_channels_list:
        kind = getattr(graph.channels[name], "UpdateType", Any)
        fields[name] = (kind if _drawable(kind) else Any, None)
    model = create_model(graph.get_name("State"), **fields)
    return model.model_json_schema()


@functools.cache
def _schemas(graph_id: str) -> dict[str, Any]:
    graph = _graph(assistant_of(graph_id))
    state = _try(lambda: _state_schema(graph))
    return {
        "graph_id": graph_id,
        "input_schema": _try(graph.get_input_jsonschema) or state,
        "output_schema": _try(graph.get_output_jsonschema) or state,
        "state_schema": state,
        "config_schema": None,
        "context_schema": _try(graph.get_context_jsonschema),
    }


@meta.get("/ok", summary="Liveness, as the LangGraph API answers it")
async def ok() -> dict[str, bool]:
    """Always ``{"ok": true}`` while the process serves."""
    return {"ok": True}


@meta.get("/info", summary="Server flags, as the LangGraph API answers them")
async def info() -> dict[str, Any]:
    """What this server supports of the LangGraph API."""
    return {
        "version": "ragent",
        "flags": {"assistants": True, "crons": False, "langsmith": False},
    }


def _matching(query: AssistantSearch) -> list[Assistant]:
    return [
        a
        for a in ASSISTANTS
        if query.graph_id in {None, a.graph_id} and query.name in {None, a.graph_id}
    ]


@router.post("/search", summary="The assistants (one per graph)")
async def search_assistants(
    principal: ChatUser, body: Annotated[AssistantSearch | None, Body()] = None
) -> list[dict[str, Any]]:
    """Filter by ``graph_id`` or ``name``; ``limit`` and ``offset`` page."""
    query = body or AssistantSearch()
    found = _matching(query)[query.offset : query.offset + query.limit]
    return [a.as_dict() for a in found]


@router.post("/count", summary="How many assistants match")
async def count_assistants(
    principal: ChatUser, body: Annotated[AssistantSearch | None, Body()] = None
) -> int:
    """The count of :func:`search_assistants` without paging."""
    return len(_matching(body or AssistantSearch()))


@router.get("/{assistant_id}", summary="One assistant")
async def get_assistant(assistant_id: str, principal: ChatUser) -> dict[str, Any]:
    """By its id or its graph id."""
    return assistant_of(assistant_id).as_dict()


@router.get("/{assistant_id}/graph", summary="The assistant's graph, drawn as JSON")
async def get_graph(
    assistant_id: str,
    principal: ChatUser,
    xray: Annotated[bool | Annotated[int, Field(ge=1, le=10)], Query()] = False,
) -> dict[str, Any]:
    """Nodes and edges, as Studio draws them."""
    drawn: dict[str, Any] = _graph(assistant_of(assistant_id)).get_graph(xray=xray).to_json()
    return drawn


@router.get("/{assistant_id}/schemas", summary="Input, output, state and context schemas")
async def get_schemas(assistant_id: str, principal: ChatUser) -> dict[str, Any]:
    """The JSON schemas of the assistant's graph."""
    # Drawn once per process; the first takes a second of CPU, off the event loop.
    return await asyncio.to_thread(_schemas, assistant_of(assistant_id).graph_id)


@router.get("/{assistant_id}/subgraphs", summary="Subgraphs (none)")
async def get_subgraphs(assistant_id: str, principal: ChatUser) -> dict[str, Any]:
    """The graphs have no subgraphs."""
    assistant_of(assistant_id)
    return {}
