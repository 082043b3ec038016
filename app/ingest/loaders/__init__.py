"""Document loaders: PDF, DOCX, HTML, Markdown and text via unstructured, plus JSONL/CSV records.

Everything runs offline: unstructured's telemetry is off and its classifier needs no model
download (see :mod:`app.ingest.loaders._unstructured`). unstructured, spaCy and pdfminer are
imported at the first file that needs them, not with this package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.ingest.loaders._files import LoadError, read_limited
from app.ingest.loaders.expansion import ExpansionLimits, check_expansion
from app.ingest.loaders.markup import load_docx, load_html, load_markdown, load_plain_text
from app.ingest.loaders.pdf import load_pdf
from app.ingest.loaders.records import RECORD_SUFFIXES, RecordSpec, load_records
from app.ingest.model import Element, LoadedDocument

__all__ = [
    "RECORD_SUFFIXES",
    "ExpansionLimits",
    "SUPPORTED_SUFFIXES",
    "LoadError",
    "RecordSpec",
    "load_document",
]

_LOADERS: dict[str, Callable[[bytes], list[Element]]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_plain_text,
    ".text": load_plain_text,
}
_MARKUP = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = frozenset(_LOADERS) | RECORD_SUFFIXES
"""File types :func:`load_document` reads (lower-case, with the dot)."""
_DEFAULT_LIMITS = ExpansionLimits()


def load_document(
    path: Path,
    *,
    max_bytes: int,
    records: RecordSpec | None = None,
    limits: ExpansionLimits = _DEFAULT_LIMITS,
) -> list[LoadedDocument]:
    """Load a file as documents: one, or for JSONL/CSV one per record.

    Args:
        path: The file; its suffix picks the loader (see :data:`SUPPORTED_SUFFIXES`).
        max_bytes: Larger files are refused before they are read.
        records: For ``.jsonl``/``.ndjson``/``.csv``: which fields form the text, the id and
            the metadata (required for those, ignored for other types).
        limits: How far the content may expand once parsed (checked before parsing, see
            :mod:`app.ingest.loaders.expansion`).

    Returns:
        The documents, each with its elements in reading order. The source is ``str(path)``,
        for records ``f"{path}#{id or line number}"``.

    Raises:
        LoadError: Unsupported type, unreadable, too large, a decompression bomb or nesting
            too deep, content that does not match the extension, encrypted or corrupt, or no
            text content; the message says which.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"unsupported file type '{suffix or path.name}'")
    data = read_limited(path, max_bytes=max_bytes)
    if suffix in RECORD_SUFFIXES:
        return load_records(path, data, spec=records, max_bytes=max_bytes)
    check_expansion(suffix, data, limits)
    if suffix in _MARKUP:
        elements = load_html(data, max_depth=limits.max_nesting)
    else:
        elements = _LOADERS[suffix](data)
    if not elements:
        raise LoadError("no text content")
    return [LoadedDocument(source=str(path), elements=elements)]
