"""A span and a latency histogram for every graph node, applied where nodes are added.

``builder.add_node(traced(retrieve))`` keeps the node's name and signature (LangGraph
reads both), times it into ``ragent_node_seconds``, counts the errors that leave it,
and, when tracing is on, makes a ``node.<name>`` span with the tenant and what the
node decided: route and tier, hits, the model that answered and its token counts,
tool calls. Never the message, the query or any source text.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from langgraph.errors import GraphBubbleUp

from app.observability.metrics import NODE_SECONDS, model_label, record_error
from app.observability.tracing import AttributeValue, span
from app.safety.identity import safe_identity

__all__ = ["describe", "traced"]

P = ParamSpec("P")
R = TypeVar("R")

Summary = dict[str, AttributeValue | None]


def _route(update: Mapping[str, Any]) -> Summary:
    return {"route": update.get("route"), "tier": update.get("tier")}


def _retrieve(update: Mapping[str, Any]) -> Summary:
    return {"hits": len(update.get("sources") or [])}


def _respond(update: Mapping[str, Any]) -> Summary:
    messages = update.get("messages") or []
    if not messages:
        return {"tier": update.get("tier")}
    reply = messages[-1]
    usage = getattr(reply, "usage_metadata", None) or {}
    served = getattr(reply, "response_metadata", {}).get("served_by")
    return {
        "tier": update.get("tier"),
        "served_by": model_label(served) if isinstance(served, str) else None,
        "tokens_in": usage.get("input_tokens"),
        "tokens_out": usage.get("output_tokens"),
        "tool_calls": len(getattr(reply, "tool_calls", None) or []),
    }


def _execute_tools(update: Mapping[str, Any]) -> Summary:
    return {"tool_calls": sum(1 for m in update.get("messages") or [] if m.type == "tool")}


def _guard(update: Mapping[str, Any]) -> Summary:
    return {"outcome": "blocked" if update.get("blocked") else None}


def _lookup_answer(update: Mapping[str, Any]) -> Summary:
    outcome = update.get("cache")
    return {"cache_hit": outcome == "hit" if outcome else None}


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], Summary]] = {
    "route": _route,
    "lookup_answer": _lookup_answer,
    "retrieve": _retrieve,
    "respond": _respond,
    "execute_tools": _execute_tools,
    "guard_input": _guard,
}


def describe(node: str, update: Any) -> Summary:
    """Return the span attributes a node's update supports (ids, counts, kinds only).

    Args:
        node: The node's name.
        update: What the node returned.

    Returns:
        Allowlisted attributes; empty for nodes with nothing to add.
    """
    summary = _SUMMARIES.get(node)
    if summary is None or not isinstance(update, Mapping):
        return {}
    return summary(update)


def _tenant(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    runtime = kwargs.get("runtime", args[1] if len(args) > 1 else None)
    tenant = getattr(getattr(runtime, "context", None), "tenant_id", None)
    return safe_identity(tenant) if isinstance(tenant, str) else None


def traced(node: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an async graph node in a span and the node-latency histogram.

    Args:
        node: An ``async def verb_noun(state, runtime)`` node.

    Returns:
        A node with the same name and signature.
    """
    name = node.__name__
    histogram = NODE_SECONDS.labels(name)

    @functools.wraps(node)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with span(f"node.{name}", observe=histogram, node=name) as s:
            if s.recording:
                s.set(tenant=_tenant(args, kwargs))
            try:
                update = await node(*args, **kwargs)
            except GraphBubbleUp:  # an interrupt or a parent command: control flow
                raise
            except Exception as exc:
                record_error("node", type(exc).__name__)
                raise
            if s.recording:
                s.set(**describe(name, update))
            return update

    return wrapper
