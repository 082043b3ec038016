"""Request bodies of the LangGraph API routes, with bounds on what the server reads.

Fields of LangGraph's API that ragent does not use (webhooks, ``after_seconds``,
``checkpoint_during``, ...) are accepted and ignored, so clients send their usual
payloads; the fields it reads are checked here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.server.schemas import ID_PATTERN

__all__ = [
    "AssistantSearch",
    "HistoryQuery",
    "ItemDelete",
    "ItemPut",
    "ItemSearch",
    "NamespaceList",
    "RunCreate",
    "StateUpdate",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadSearch",
]

Metadata = dict[str, Any]
Label = str
StreamMode = Literal[
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "events",
    "debug",
    "checkpoints",
    "tasks",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AssistantSearch(_Body):
    """``POST /assistants/search``."""

    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=0, le=1000)
    offset: int = Field(default=0, ge=0)


class ThreadCreate(_Body):
    """``POST /threads``."""

    thread_id: str | None = Field(default=None, pattern=ID_PATTERN)
    metadata: Metadata = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(_Body):
    """``PATCH /threads/{thread_id}``."""

    metadata: Metadata = Field(default_factory=dict)


class ThreadSearch(_Body):
    """``POST /threads/search``."""

    metadata: Metadata | None = None
    ids: list[str] | None = Field(default=None, max_length=1000)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)


class HistoryQuery(_Body):
    """``POST /threads/{thread_id}/history``."""

    limit: int = Field(default=10, ge=1, le=1000)
    before: dict[str, Any] | str | None = None


class StateUpdate(_Body):
    """``POST /threads/{thread_id}/state``: only messages may be added."""

    values: dict[str, Any] | list[dict[str, Any]] | None = None
    as_node: str | None = None


class RunCreate(_Body):
    """A run: ``POST /threads/{thread_id}/runs[/wait|/stream]`` and ``/runs[/wait|/stream]``."""

    assistant_id: str = Field(min_length=1, max_length=128)
    input: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: Metadata | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "reject"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_completion: Literal["delete", "keep"] | None = None
    stream_resumable: bool = False

    def modes(self) -> list[str]:
        """The stream modes asked for, as a list."""
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)


class ItemPut(_Body):
    """``PUT /store/items``."""

    namespace: list[Label] = Field(min_length=1, max_length=10)
    key: str = Field(min_length=1, max_length=256)
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None


class ItemDelete(_Body):
    """``DELETE /store/items``."""

    namespace: list[Label] = Field(min_length=1, max_length=10)
    key: str = Field(min_length=1, max_length=256)


class ItemSearch(_Body):
    """``POST /store/items/search``."""

    namespace_prefix: list[Label] = Field(default_factory=list, max_length=10)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10_000)
    query: str | None = Field(default=None, max_length=10_000)


class NamespaceList(_Body):
    """``POST /store/namespaces``."""

    prefix: list[Label] | None = Field(default=None, max_length=10)
    suffix: list[Label] | None = Field(default=None, max_length=10)
    max_depth: int | None = Field(default=None, ge=1, le=10)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10_000)
