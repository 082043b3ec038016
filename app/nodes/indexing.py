"""Nodes of the indexer graph: check the request, then run the ingestion pipeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph.runtime import Runtime

from app.context import Context
from app.ingest.factory import build_ingestor
from app.ingest.pipeline import IngestOptions
from app.resources import aget_resources

__all__ = ["IndexerInput", "IndexerState", "after_check", "check_paths", "ingest_documents"]


@dataclass(kw_only=True)
class IndexerInput:
    """What to ingest; the tenant comes from the run's context, never from here."""

    paths: list[str] = field(default_factory=list)
    """Files or folders on the server's file system."""
    acl: list[str] = field(default_factory=list)
    """Groups allowed to read the documents; empty means everyone in the tenant."""
    prune: bool = False
    """Remove indexed documents whose files disappeared under ``paths``."""


@dataclass(kw_only=True)
class IndexerState(IndexerInput):
    """The request plus its outcome."""

    error: str = ""
    """Why the request was refused before any work; empty when it ran."""
    report: dict[str, Any] = field(default_factory=dict)
    """The ingest report (documents, chunks, unchanged, duplicates, failed, ...)."""


async def check_paths(state: IndexerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Refuse an empty request or a path that does not exist, before any work."""
    if not state.paths:
        return {"error": "no paths given"}
    missing = [p for p in state.paths if not await asyncio.to_thread(Path(p).exists)]
    if missing:
        return {"error": f"no such file or directory: {missing[0]}"}
    return {"error": ""}


def after_check(state: IndexerState) -> Literal["ingest_documents", "__end__"]:
    """Run the pipeline only for a valid request."""
    return "__end__" if state.error else "ingest_documents"


async def ingest_documents(state: IndexerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ingest the paths for the caller's tenant and return the report."""
    resources = await aget_resources()
    ingestor = await asyncio.to_thread(build_ingestor, resources)
    options = IngestOptions(
        tenant_id=runtime.context.tenant_id,
        acl=tuple(state.acl),
        workers=resources.settings.ingest.workers,
        prune=state.prune,
        progress=False,
    )
    report = await asyncio.to_thread(ingestor.ingest, [Path(p) for p in state.paths], options)
    return {"report": report.as_dict()}
