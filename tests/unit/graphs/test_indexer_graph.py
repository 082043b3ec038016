from __future__ import annotations

from pathlib import Path

from app.context import Context
from app.graphs.indexer import graph
from app.nodes.indexing import IndexerInput
from app.resources import Resources
from app.retrieval.types import SearchFilter


async def test_indexer_graph_ingests_for_the_context_tenant(
    resources: Resources, tmp_path: Path
) -> None:
    doc = tmp_path / "wal.md"
    doc.write_text("# WAL\n\nSQLite checkpoints the WAL file when it reaches 1000 pages.")
    state = await graph.ainvoke(
        IndexerInput(paths=[str(doc)], acl=["eng"]), context=Context(tenant_id="acme")
    )
    assert state["error"] == ""
    assert state["report"]["documents"] == 1 and state["report"]["failed"] == []
    assert resources.writer.count(SearchFilter("acme", frozenset({"eng"}))) >= 1  # type: ignore[attr-defined]
    assert resources.writer.count(SearchFilter("default", frozenset({"eng"}))) == 0  # type: ignore[attr-defined]


async def test_indexer_graph_refuses_missing_paths_before_work(
    resources: Resources, tmp_path: Path
) -> None:
    state = await graph.ainvoke(IndexerInput(paths=[str(tmp_path / "nope")]), context=Context())
    assert state["error"].startswith("no such file or directory")
    assert state.get("report", {}) == {}
    empty = await graph.ainvoke(IndexerInput(paths=[]), context=Context())
    assert empty["error"] == "no paths given"
