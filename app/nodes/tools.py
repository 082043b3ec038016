"""Execute the model's tool calls under policies, approvals, limits and budgets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from app.context import Context
from app.conversations import thread_of
from app.llm.offline.tool_use import describe_tool_results
from app.llm.openai.tool_args import refused_tool_calls
from app.llm.tool_recovery import RECOVERED_TOOL_CALLS
from app.nodes.respond import render_source
from app.observability.tracing import span
from app.resources import Resources, aget_resources
from app.state import AgentState, Source
from app.tools.approval import approval_request, parse_decisions
from app.tools.client import check_args, client_request, result_messages
from app.tools.context import ToolContext
from app.tools.executor import Toolbox
from app.tools.runaway import (
    Budget,
    call_signature,
    check_budget,
    current_run,
    failed_repair,
    repeated_call,
)
from app.tools.search import cite_results, knowledge_search

__all__ = ["STEPS_AFTER_TOOLS", "after_respond", "after_tools", "execute_tools"]

STEPS_AFTER_TOOLS: Final = 4
"""Graph steps a run needs after a tool round: respond, guard_output, store_answer,
compress_memory."""

STEP_LIMIT: Final = "I stopped because this request reached its step limit."


def _caller(resources: Resources, runtime: Runtime[Context]) -> ToolContext:
    ctx = runtime.context
    return ToolContext(
        tenant_id=ctx.tenant_id,
        user_id=ctx.user_id,
        acl_groups=tuple(ctx.acl_groups),
        store=runtime.store,
        retriever=resources.retriever,
        namespace=ctx.namespace,
        hybrid=ctx.hybrid,
        top_k=ctx.top_k,
        settings=resources.settings.tools,
        memory=resources.settings.memory,
    )


def _thread() -> str:
    try:
        return thread_of(get_config())
    except RuntimeError:  # called outside a graph run (unit tests of the node)
        return ""


def _budget(resources: Resources) -> Budget:
    limits = resources.settings.limits
    return Budget(limits.max_tool_calls, limits.max_run_tokens, limits.max_run_seconds)


def _stop_reason(state: AgentState, box: Toolbox, resources: Resources) -> str | None:
    """Checks that depend only on the state, so they give the same verdict on a resume."""
    calls = state.messages[-1].tool_calls if isinstance(state.messages[-1], AIMessage) else []
    run = current_run(state.messages)
    invalid = {
        c.get("id") or ""
        for c in calls
        if c["name"] in box.registry and box.registry.validate(c["name"], c["args"])
    }
    if state.remaining_steps <= STEPS_AFTER_TOOLS:
        return STEP_LIMIT
    return (
        repeated_call(run, box.settings.tools.max_repeats)
        or failed_repair(run[:-1], calls, invalid)
        or check_budget(run, _budget(resources), resources.counter, None)
    )


def _cite(
    results: list[ToolMessage], existing: list[Source], max_chars: int
) -> tuple[list[ToolMessage], list[Source]]:
    """Turn knowledge-search results into labelled sources the answer can cite."""
    added: list[Source] = []
    out = []
    for message in results:
        if message.name == knowledge_search.name:
            message, new = cite_results(message, [*existing, *added], render_source, max_chars)
            added += new
        out.append(message)
    return out, added


async def execute_tools(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the last AI message's tool calls, or end the run with a final message.

    In order: runaway checks (step limit, repeated calls, a failed repair, tool-call and
    token budgets), then policies. Calls whose streamed arguments passed
    ``llm.max_tool_args_bytes`` and denied calls are refused; calls that need approval
    pause the run with ``interrupt()`` until the user decides (the wait does not count
    against the wall-time budget, whose clock restarts on the decision). Calls to the
    caller's own tools (``client_tools``) with arguments that fit their schema pause the
    run the same way until the caller sends their results. The wall-time
    budget is checked, then the calls run concurrently, each rate-limited, validated,
    timed out and audited. Knowledge-search results become the turn's sources.
    """
    resources = await aget_resources()
    box = resources.toolbox.offering(runtime.context.tools)
    caller = _caller(resources, runtime)
    thread = _thread()
    last = state.messages[-1]
    assert isinstance(last, AIMessage)  # guaranteed by after_respond
    calls: list[ToolCall] = list(last.tool_calls)
    recovered = last.response_metadata.get(RECOVERED_TOOL_CALLS)
    if reason := _stop_reason(state, box, resources):
        return {
            "messages": await box.stop(calls, caller, reason, thread=thread, recovered=recovered)
        }

    refused = refused_tool_calls(last.response_metadata)
    schemas = {
        spec["function"]["name"]: spec["function"].get("parameters")
        for spec in runtime.context.client_tools
        if spec["function"]["name"] not in box.registry
    }
    asked = [c for c in calls if c["name"] in schemas and c.get("id") not in refused]
    malformed = {
        c.get("id") or "": problems
        for c in asked
        if (problems := check_args(schemas[c["name"]], c["args"]))
    }
    to_client = [c for c in asked if c.get("id") not in malformed]
    policies = {c.get("id") or "": box.policy(c["name"]) for c in calls}
    done = _calls_done(state.messages)
    repeats = {
        c.get("id") or "": done[sig]
        for c in calls
        if (sig := call_signature(c)) in done and c.get("id") not in refused
    }
    if calls and len(repeats) == len(calls):
        # Every call was answered before in this request: the model has all it asked
        # for, so the turn ends with those results instead of running them again.
        return {"messages": await _finish_with(calls, repeats, box, caller, thread, recovered)}
    pending = [
        c
        for c in calls
        if policies[c.get("id") or ""] == "require_approval"
        and c.get("id") not in refused
        and c.get("id") not in repeats
    ]
    approved: dict[str, bool] = {}
    max_seconds = resources.settings.limits.max_run_seconds
    remaining = max_seconds
    if pending:
        decision = interrupt(approval_request(pending, box.risks))
        approved = parse_decisions(decision, pending)
    elif state.turn_started_at:
        elapsed = time.time() - state.turn_started_at
        budget = check_budget([], _budget(resources), resources.counter, elapsed)
        if budget:
            return {
                "messages": await box.stop(
                    calls, caller, budget, thread=thread, recovered=recovered
                )
            }
        remaining = max_seconds - elapsed
    answered: dict[str, ToolMessage] = {}
    if to_client:  # the caller runs them; its wait does not count against the budget
        results = interrupt(client_request(to_client))
        max_chars = resources.settings.tools.max_output_chars
        answered = {m.tool_call_id: m for m in result_messages(to_client, results, max_chars)}
        remaining = max_seconds
    timeout = max(0.1, min(resources.settings.limits.tool_timeout_s, remaining))

    async def one(call: ToolCall) -> ToolMessage:
        name = call["name"] if call["name"] in box.risks else "unknown"  # never model text
        with span("tool.call", tool=name) as traced:
            message = await decide(call)
            traced.set(outcome=str(message.response_metadata.get("outcome", "error")))
            return message

    async def decide(call: ToolCall) -> ToolMessage:
        call_id = call.get("id") or ""
        policy = policies[call_id]
        if call_id in refused:  # its arguments were over llm.max_tool_args_bytes
            return await box.refuse(
                call,
                caller,
                "invalid_arguments",
                refused[call_id],
                thread=thread,
                recovered=recovered,
            )
        if call_id in answered:
            return answered[call_id]
        if call_id in repeats:  # the same call already ran in this request
            return await _not_again(call, repeats[call_id], box, caller, thread, recovered)
        if call_id in malformed:
            details = "\n".join(f"- {problem}" for problem in malformed[call_id])
            text = f"Error: invalid arguments for tool {call['name']!r}:\n{details}"
            return await box.refuse(
                call, caller, "invalid_arguments", text, thread=thread, recovered=recovered
            )
        if policy == "deny":
            text = f"Error: the {call['name']} tool is not allowed here (policy: deny)."
            return await box.refuse(
                call, caller, "denied", text, thread=thread, recovered=recovered
            )
        if policy == "require_approval" and not approved.get(call_id, False):
            text = (
                f"Error: the user did not approve this call to {call['name']}; do not call "
                "it again for this request."
            )
            return await box.refuse(
                call, caller, "rejected", text, thread=thread, recovered=recovered
            )
        return await box.run(
            call,
            caller,
            timeout_s=timeout,
            thread=thread,
            approved=policy != "allow",
            recovered=recovered,
        )

    results = list(await asyncio.gather(*(one(call) for call in calls)))
    results, sources = _cite(
        results, list(state.sources), resources.settings.tools.max_output_chars
    )
    update: dict[str, Any] = {"messages": results, "tool_steps": state.tool_steps + 1}
    if sources:
        update["sources"] = sources
    if pending or to_client:
        update["turn_started_at"] = time.time()
    return update


async def _not_again(
    call: ToolCall,
    earlier: ToolMessage,
    box: Toolbox,
    caller: ToolContext,
    thread: str,
    recovered: str | None,
) -> ToolMessage:
    """Answer a call that already ran in this request with its result, without running it."""
    await box.record(
        call, caller, "duplicate", thread=thread, started=time.perf_counter(), recovered=recovered
    )
    return ToolMessage(
        content=f"Already done earlier in this request, not run again: {earlier.text}",
        tool_call_id=call.get("id") or "",
        name=call["name"],
        response_metadata={"outcome": "duplicate", "result": earlier.text},
    )


async def _finish_with(
    calls: Sequence[ToolCall],
    earlier: dict[str, ToolMessage],
    box: Toolbox,
    caller: ToolContext,
    thread: str,
    recovered: str | None,
) -> list[ToolMessage | AIMessage]:
    """Answer repeated calls as not run again, then end the turn restating their results."""
    answers: list[ToolMessage | AIMessage] = [
        await _not_again(call, earlier[call.get("id") or ""], box, caller, thread, recovered)
        for call in calls
    ]
    results = list({id(m): m for m in earlier.values()}.values())
    return [*answers, AIMessage(content=describe_tool_results(results))]


def _calls_done(messages: Sequence[AnyMessage]) -> dict[str, ToolMessage]:
    """This run's calls that ran and succeeded: their signature and their result.

    A model (small ones especially) may ask for the same call again once it has its
    result: running it again would save a note twice, ask the user twice to approve it,
    or loop until the runaway limits stop the turn.
    """
    run = current_run(messages)
    asked = {c.get("id"): c for m in run if isinstance(m, AIMessage) for c in m.tool_calls}
    return {
        call_signature(asked[m.tool_call_id]): m
        for m in run
        if isinstance(m, ToolMessage)
        and m.tool_call_id in asked
        and m.response_metadata.get("outcome") == "ok"
    }


def after_respond(state: AgentState) -> Literal["execute_tools", "guard_output"]:
    """Loop through tools while the model asks for them and steps remain."""
    last = state.messages[-1]
    if (
        isinstance(last, AIMessage)
        and last.tool_calls
        and state.tool_steps < state.max_tool_steps
        and state.remaining_steps > STEPS_AFTER_TOOLS
    ):
        return "execute_tools"
    return "guard_output"


def after_tools(state: AgentState) -> Literal["respond", "guard_output"]:
    """Back to the model with the results, or finish when the tool node ended the run."""
    return "guard_output" if isinstance(state.messages[-1], AIMessage) else "respond"
