"""JSON of graph values, state snapshots and checkpoints, as the LangGraph API writes them.

Messages are their ``model_dump()`` (``{"type": "ai", "content": ..., "id": ...}``), as
``langgraph_sdk`` and Studio read them. The checkpoint key of a thread is its owner's
(``<tenant>/<user>/<thread>``); callers only ever see their own thread id. A snapshot
passes the output guard (:func:`~app.server.platform.guarded.guarded`).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

from app.server.platform.guarded import guarded

__all__ = ["dumps", "iso", "jsonable", "snapshot_json"]


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseException):
        return {"error": type(value).__name__}
    return str(value)


def dumps(value: Any) -> str:
    """Return ``value`` as JSON (messages, interrupts and dataclasses included)."""
    return json.dumps(value, default=_default, ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON types."""
    return json.loads(dumps(value))


def iso(timestamp: float) -> str:
    """Return a Unix time as an ISO 8601 string in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _checkpoint(config: RunnableConfig | None, thread_id: str) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": thread_id,
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def _interrupts(interrupts: Any) -> list[dict[str, Any]]:
    return [{"value": jsonable(i.value), "id": i.id} for i in interrupts]


def snapshot_json(snapshot: StateSnapshot, thread_id: str) -> dict[str, Any]:
    """Return a state snapshot as the API's ``ThreadState``."""
    tasks = [
        {
            "id": task.id,
            "name": task.name,
            "path": jsonable(task.path),
            "error": type(task.error).__name__ if task.error is not None else None,
            "interrupts": _interrupts(task.interrupts),
            "checkpoint": None,
            "state": None,
            "result": jsonable(task.result),
        }
        for task in snapshot.tasks
    ]
    metadata = dict(snapshot.metadata or {})
    metadata.pop("thread_id", None)  # the owner-scoped checkpoint key
    # A checkpoint before guard_output holds the model's reply unchecked.
    state: dict[str, Any] = guarded(
        {
            "values": jsonable(snapshot.values or {}),
            "next": list(snapshot.next),
            "checkpoint": _checkpoint(snapshot.config, thread_id),
            "metadata": jsonable(metadata),
            "created_at": snapshot.created_at,
            "parent_checkpoint": _checkpoint(snapshot.parent_config, thread_id),
            "tasks": tasks,
            "interrupts": _interrupts(snapshot.interrupts),
        }
    )
    return state
