"""The agent graph: wiring only. See ARCHITECTURE.md for the request lifecycle."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from app.context import Context
from app.graphs.on_loop import on_loop
from app.nodes.cache import after_answer, after_lookup, lookup_answer, store_answer
from app.nodes.guard import after_guard, guard_input, guard_output
from app.nodes.memory import compress_memory, load_memory
from app.nodes.respond import respond
from app.nodes.retrieve import retrieve
from app.nodes.route import after_route, route
from app.nodes.tools import after_respond, after_tools, execute_tools
from app.observability.graph import traced
from app.state import AgentState, InputState

__all__ = ["builder", "compile_agent", "graph"]

builder = StateGraph(AgentState, context_schema=Context, input_schema=InputState)
builder.add_node(traced(guard_input))
builder.add_node(traced(load_memory))
builder.add_node(traced(route))
builder.add_node(traced(lookup_answer))
builder.add_node(traced(retrieve))
builder.add_node(traced(respond))
builder.add_node(traced(execute_tools))
builder.add_node(traced(guard_output))
builder.add_node(traced(store_answer))
builder.add_node(traced(compress_memory))

builder.add_edge(START, "guard_input")
builder.add_conditional_edges("guard_input", on_loop(after_guard), ["load_memory", END])
builder.add_edge("load_memory", "route")
builder.add_conditional_edges(
    "route", on_loop(after_route), ["lookup_answer", "retrieve", "respond"]
)
builder.add_conditional_edges(
    "lookup_answer", on_loop(after_lookup), ["retrieve", "compress_memory"]
)
builder.add_edge("retrieve", "respond")
builder.add_conditional_edges("respond", on_loop(after_respond), ["execute_tools", "guard_output"])
builder.add_conditional_edges("execute_tools", on_loop(after_tools), ["respond", "guard_output"])
builder.add_conditional_edges(
    "guard_output", on_loop(after_answer), ["store_answer", "compress_memory"]
)
builder.add_edge("store_answer", "compress_memory")
builder.add_edge("compress_memory", END)

graph = builder.compile(name="ragent")
"""The graph for ``langgraph dev``; the server supplies the checkpointer."""


def compile_agent(
    checkpointer: BaseCheckpointSaver[str] | None = None, store: BaseStore | None = None
) -> CompiledStateGraph[AgentState, Context, InputState, AgentState]:
    """Compile the agent with a checkpointer (and optionally a long-term store)."""
    return builder.compile(checkpointer=checkpointer, store=store, name="ragent")
