"""Helpers for tests of tool execution: scripted tool calls, a compiled agent, the audit file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from app.context import Context
from app.graphs.agent import compile_agent
from app.resources import Resources
from app.settings import Settings
from app.tools.catalog import build_registry
from app.tools.registry import ToolRegistry
from app.turns import Answer, ask
from tests.fakes import ScriptedChatModel

CTX = Context(tenant_id="t1", user_id="u1")


def calls(*specs: tuple[str, dict[str, Any]], prefix: str = "c") -> AIMessage:
    """An AI message asking for the given ``(tool, args)`` calls."""
    return AIMessage(
        "",
        tool_calls=[
            {"name": name, "args": args, "id": f"{prefix}{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(specs)
        ],
    )


def configure(resources: Resources, **sections: dict[str, Any]) -> Settings:
    """A deep copy of the settings with fields of ``tools``, ``limits``, ``memory`` changed."""
    settings = resources.settings.model_copy(deep=True)
    for section, values in sections.items():
        part = getattr(settings, section)
        for key, value in values.items():
            setattr(part, key, value)
    return settings


def with_model(
    resources: Resources,
    replies: Sequence[AIMessage],
    *,
    only: Sequence[BaseTool] | None = None,
    **sections: dict[str, Any],
) -> tuple[Resources, ScriptedChatModel]:
    """Resources whose model replies with ``replies``; tools are ``only`` or the configured ones.

    The scripted model only answers turns: memory extraction and summaries stay offline
    unless ``memory=`` says otherwise.
    """
    memory = {"extraction": "explicit", "summarizer": "extractive", **sections.pop("memory", {})}
    settings = configure(resources, memory=memory, **sections)
    registry = ToolRegistry(list(only)) if only is not None else build_registry(settings.tools)
    model = ScriptedChatModel(replies=list(replies))
    return replace(resources, chat_model=model, settings=settings, tools=registry), model


async def run_turn(
    question: str,
    *,
    thread: str = "t",
    context: Context = CTX,
    saver: BaseCheckpointSaver[str] | None = None,
    store: BaseStore | None = None,
) -> Answer:
    """One turn on a fresh agent (give ``saver`` to continue a thread)."""
    agent = compile_agent(saver or InMemorySaver(), store)
    return await ask(agent, question, context=context, thread_id=thread, max_chars=8000)


def audit(settings: Settings) -> list[dict[str, Any]]:
    """The audit records written so far."""
    path = settings.tools.audit_path or settings.data_dir / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
