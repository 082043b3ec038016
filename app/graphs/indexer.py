"""The indexer graph, so ingestion runs can be started and inspected in Studio. Wiring only."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from app.context import Context
from app.graphs.on_loop import on_loop
from app.nodes.indexing import (
    IndexerInput,
    IndexerState,
    after_check,
    check_paths,
    ingest_documents,
)

__all__ = ["builder", "graph"]

builder = StateGraph(IndexerState, context_schema=Context, input_schema=IndexerInput)
builder.add_node(check_paths)
builder.add_node(ingest_documents)
builder.add_edge(START, "check_paths")
builder.add_conditional_edges("check_paths", on_loop(after_check), ["ingest_documents", END])
builder.add_edge("ingest_documents", END)

graph = builder.compile(name="ragent-indexer")
