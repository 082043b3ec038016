"""An ingestor with small chunks over a test's resources, shared by the pipeline tests."""

from __future__ import annotations

from typing import Any

from app.ingest.pipeline import Ingestor
from app.resources import Resources


def small_ingestor(resources: Resources, **options: Any) -> Ingestor:
    """An :class:`Ingestor` writing to ``resources`` with 60-token chunks; ``options`` add to it."""
    return Ingestor(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=60,
        chunk_overlap=8,
        max_file_bytes=100_000,
        **options,
    )
