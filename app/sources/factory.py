"""Build the source sync from Settings and the process's engines."""

from __future__ import annotations

from app.ingest.factory import build_ingestor
from app.resources import Resources
from app.sources.cursors import CursorStore
from app.sources.sync import SourceSync

__all__ = ["build_source_sync"]


def build_source_sync(resources: Resources) -> SourceSync:
    """Return a :class:`SourceSync` that chunks as the file pipeline does.

    Raises:
        SettingsError: The ``ingest`` chunk settings do not fit the embedder.
    """
    files = build_ingestor(resources)
    return SourceSync(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=files.chunk_tokens,
        chunk_overlap=files.chunk_overlap,
        cursors=CursorStore(resources.settings.data_dir / "sources.sqlite"),
        embed_batch=files.embed_batch,
    )
