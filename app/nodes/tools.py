"""Execute the model's tool calls with schema validation, timeouts and a step limit."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from app.context import Context
from app.resources import aget_resources, get_resources
from app.state import AgentState

__all__ = ["after_respond", "execute_tools"]


async def execute_tools(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run every tool call of the last AI message concurrently; failures become tool errors."""
    resources = await aget_resources()
    last = state.messages[-1]
    assert isinstance(last, AIMessage)  # guaranteed by after_respond
    results = await asyncio.gather(
        *(
            resources.tools.execute(call, timeout_s=resources.settings.limits.tool_timeout_s)
            for call in last.tool_calls
        )
    )
    return {"messages": list(results), "tool_steps": state.tool_steps + 1}


def after_respond(state: AgentState) -> Literal["execute_tools", "guard_output"]:
    """Loop through tools while the model asks for them and steps remain."""
    last = state.messages[-1]
    limit = get_resources().settings.limits.max_tool_steps
    if isinstance(last, AIMessage) and last.tool_calls and state.tool_steps < limit:
        return "execute_tools"
    return "guard_output"
