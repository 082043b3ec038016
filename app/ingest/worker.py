"""Parsing work that runs in worker processes: load a file, clean each document."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from app.ingest.clean import clean_document
from app.ingest.loaders import ExpansionLimits, LoadError, RecordSpec, load_document
from app.ingest.model import LoadedDocument

__all__ = ["OUT_OF_MEMORY", "ParseJob", "ParseResult", "parse_file"]

OUT_OF_MEMORY = "exceeded the parse memory limit (ingest.parse_memory_bytes)"
"""The error of a file whose parse ran out of memory."""


@dataclass(frozen=True, slots=True)
class ParseJob:
    """One file to parse."""

    path: Path
    file_hash: str
    max_bytes: int
    records: RecordSpec | None = None
    sign_only: bool = False
    """An unchanged file, parsed only so that others are compared with it (not indexed)."""
    limits: ExpansionLimits = ExpansionLimits()
    """How far the file may expand once parsed."""


@dataclass(slots=True)
class ParseResult:
    """The cleaned documents of one file, or why it failed."""

    job: ParseJob
    documents: list[LoadedDocument] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def parse_file(job: ParseJob) -> ParseResult:
    """Load and clean one file; never raises for a bad file.

    Args:
        job: The file and its loader options.

    Returns:
        The documents (one, or one per record for JSONL/CSV), or an error reason.
    """
    started = time.perf_counter()
    try:
        docs = load_document(
            job.path, max_bytes=job.max_bytes, records=job.records, limits=job.limits
        )
        cleaned = [clean_document(doc) for doc in docs]
        return ParseResult(job, cleaned, seconds=time.perf_counter() - started)
    except LoadError as exc:
        return ParseResult(job, error=str(exc), seconds=time.perf_counter() - started)
    except MemoryError:
        return ParseResult(job, error=OUT_OF_MEMORY, seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a parser bug on one file must not stop the run
        reason = f"parser error: {type(exc).__name__}: {exc}"[:500]
        return ParseResult(job, error=reason, seconds=time.perf_counter() - started)
