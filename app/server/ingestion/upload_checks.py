"""What may be written to the uploads folder, and removing what an ingestion refused.

An upload is checked before anything of it is written: a file whose type the pipeline
does not read (which is also what a name without a usable extension becomes) or that is
larger than ``ingest.max_file_bytes`` is refused on the spot and never reaches the disk.
A kept file that the job then refuses (it fails to parse, is dropped as a duplicate or as
near-empty), and every kept file of a request or job that fails or is cancelled, is
removed again with :func:`discard`, together with its folder when that is left empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path, PurePosixPath
from typing import Protocol

from app.ingest.loaders import SUPPORTED_SUFFIXES
from app.ingest.report import IngestReport
from app.server.ingestion.uploads import PIECE_BYTES, Upload

__all__ = ["FileTooLarge", "discard", "pieces", "refusal", "refused_paths"]


def refusal(name: str, size: int | None, max_bytes: int) -> str | None:
    """Why an upload named ``name`` (already made safe) of ``size`` bytes is refused, if it is.

    Args:
        name: The file name it would be kept under; its suffix picks the loader.
        size: Its size in bytes, if known (a spooled upload knows it).
        max_bytes: ``ingest.max_file_bytes``.

    Returns:
        A one-line reason for the job's errors, or None when the file may be kept.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return f"unsupported file type '{suffix or name}'"
    if size is not None and size > max_bytes:
        return f"file too large ({size} bytes > {max_bytes})"
    return None


class FileTooLarge(Exception):
    """An upload passed ``ingest.max_file_bytes`` while it was being copied."""

    def __init__(self, max_bytes: int) -> None:
        """Record the limit passed."""
        super().__init__(f"file too large (more than {max_bytes} bytes)")


class _Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


async def pieces(upload: _Readable, max_bytes: int) -> AsyncIterator[bytes]:
    """The bytes of ``upload`` in pieces of 1 MiB; raises :class:`FileTooLarge` past the limit.

    The limit is checked before a piece is handed on, so nothing past it is written.
    """
    size = 0
    while piece := await upload.read(PIECE_BYTES):
        size += len(piece)
        if size > max_bytes:
            raise FileTooLarge(max_bytes)
        yield piece


def refused_paths(report: IngestReport) -> set[str]:
    """The files of a run that left nothing indexed: failed, or dropped whole.

    A record dropped from a JSONL/CSV file (``file#id``) does not refuse its file.
    """
    failed = {item["source"] for item in report.failed}
    dropped = {item["source"] for item in report.dropped if "#" not in item["source"]}
    return failed | dropped


def discard(uploads: Iterable[Upload]) -> None:
    """Delete the kept files of ``uploads`` and their folders once empty; never raises."""
    for upload in uploads:
        _remove(upload.path)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # already gone; nothing else is worth failing for
        path.unlink()
    with contextlib.suppress(OSError):  # not empty (another file of the source) or gone
        path.parent.rmdir()
