"""``knowledge_search``: the same hybrid retrieval as the graph, as the caller."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, cast

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from pydantic import Field

from app.retrieval.types import SearchFilter, namespace_tenant
from app.state import Source
from app.tools.context import Caller
from app.tools.risk import with_risk

__all__ = ["cite_results", "knowledge_search"]


@tool(parse_docstring=True, response_format="content_and_artifact")
async def knowledge_search(
    query: Annotated[str, Field(min_length=1, max_length=500)],
    caller: Caller,
    top_n: Annotated[int, Field(ge=1, le=10)] = 5,
) -> tuple[str, list[Source]]:
    """Search the user's documents for passages about a question; cite them by label.

    Args:
        query: A standalone search query that names its subject (no pronouns).
        caller: Injected: who the call acts for (never shown to the model).
        top_n: How many passages to return (1 to 10).
    """
    if caller.retriever is None:
        raise ValueError("document search is not available")
    tenant = namespace_tenant(caller.tenant_id, caller.namespace)
    flt = SearchFilter(tenant, frozenset(caller.acl_groups))
    hits = await caller.retriever.search(
        query, flt, top_n=top_n, top_k=caller.top_k, hybrid=caller.hybrid
    )
    sources = [
        Source(
            label="",
            chunk_id=h.chunk.chunk_id,
            doc_id=h.chunk.doc_id,
            source=h.chunk.source,
            text=h.chunk.text,
            span=list(h.chunk.span),
            score=h.score,
        )
        for h in hits
    ]
    if not sources:
        return "No passages matched.", []
    return f"{len(sources)} passages found.", sources


with_risk(knowledge_search, "read")


def cite_results(
    message: ToolMessage,
    existing: Sequence[Source],
    render: Callable[[Source], str],
    max_chars: int,
) -> tuple[ToolMessage, list[Source]]:
    """Label a search result's passages as the turn's sources and show them to the model.

    Passages get the next free ``[S<n>]`` labels, in the order the state's source reducer
    gives them (a chunk already among the sources keeps its label), so the model cites
    tool results like retrieved ones and the output guard maps every label to a chunk.

    Args:
        message: The tool's reply; its artifact holds the unlabelled passages.
        existing: The turn's sources so far, labelled.
        render: How one labelled source is written for the model.
        max_chars: The output cap; passages after the first that does not fit are left out.

    Returns:
        The reply showing the labelled passages, and the new labelled sources (to add to
        the state, and to pass as ``existing`` for the next result).
    """
    found: Any = message.artifact
    if message.status != "success" or not isinstance(found, list) or not found:
        return message.model_copy(update={"artifact": None}), []
    labels = {s["chunk_id"]: s["label"] for s in existing}
    added: list[Source] = []
    shown: list[str] = []
    size = 0
    for passage in found:
        label = labels.get(passage["chunk_id"]) or f"S{len(existing) + len(added) + 1}"
        labelled = cast(Source, {**passage, "label": label})
        block = render(labelled)
        if size + len(block) + 2 > max_chars:
            break
        shown.append(block)
        size += len(block) + 2
        if passage["chunk_id"] not in labels:
            labels[passage["chunk_id"]] = label
            added.append(labelled)
    content = "\n\n".join(shown) if shown else "The passages were too long to show."
    return message.model_copy(update={"content": content, "artifact": None}), added
