"""The summary of an ingest run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["IngestReport"]


@dataclass
class IngestReport:
    """What an ingest run did; ``ragent ingest --json`` prints it."""

    documents: int = 0
    """Documents indexed (new or changed)."""
    chunks: int = 0
    """Chunks written."""
    unchanged: int = 0
    """Documents skipped because the same content was already indexed the same way."""
    duplicates: int = 0
    """Documents and chunks dropped as exact or near duplicates."""
    near_empty: int = 0
    """Documents dropped because they held (almost) no text."""
    boilerplate: int = 0
    """Repeated navigation, header and footer elements or lines removed."""
    pruned: int = 0
    """Documents removed because their source disappeared (``--prune``)."""
    skipped: int = 0
    """Files inside the given folders with a type ragent does not read."""
    failed: list[dict[str, str]] = field(default_factory=list)
    """Files that could not be ingested: ``{"source", "reason"}``; nothing of them is indexed."""
    dropped: list[dict[str, str]] = field(default_factory=list)
    """Documents dropped on purpose: ``{"source", "reason"}`` (duplicate of ..., near-empty),
    and symbolic links in the walked folders that were not followed (``symlink to ...,
    outside the ingested folders: not followed``, a loop, a broken link)."""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: ``parse`` (summed over workers), ``embed``, ``index``."""

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return asdict(self)
