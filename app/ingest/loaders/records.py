"""Records loader: database exports (JSONL, CSV) become one document per record."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.ingest.loaders._files import LoadError, decode_text
from app.ingest.model import Element, LoadedDocument

__all__ = ["RECORD_SUFFIXES", "RecordSpec", "load_records"]

RECORD_SUFFIXES = frozenset({".jsonl", ".ndjson", ".csv"})


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """Which fields of each record form its text, its id and its metadata.

    The text: with one text field, its value; with several, one ``field: value`` line per
    field, in this order (the labels tell "title" from "body" in a chunk). Missing, null and
    empty values are left out; a record with no text at all is skipped. Non-string values are
    written as JSON (``true``, ``3.5``, ``{"a": 1}``).
    """

    text_fields: tuple[str, ...]
    """Fields that form the text, in this order."""
    id_field: str | None = None
    """Field that identifies a record (its source is ``<file>#<id>``); None: the line number
    (CSV: the line the record starts on, the header being line 1)."""
    metadata_fields: tuple[str, ...] | None = None
    """Fields kept as chunk metadata; None: every field that is not a text field."""

    def __post_init__(self) -> None:
        """Reject a spec without text fields.

        Raises:
            ValueError: ``text_fields`` is empty.
        """
        if not self.text_fields:
            raise ValueError("a record spec needs at least one text field")


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _document(
    path: Path, line: int, record: dict[str, Any], spec: RecordSpec
) -> LoadedDocument | None:
    values = [
        (name, _value(record[name]).strip())
        for name in spec.text_fields
        if record.get(name) is not None
    ]
    values = [(name, value) for name, value in values if value]
    if not values:
        return None
    if len(spec.text_fields) == 1:
        text = values[0][1]
    else:
        text = "\n".join(f"{name}: {value}" for name, value in values)
    if spec.id_field is None:
        key = str(line)
    else:
        if record.get(spec.id_field) in (None, ""):
            raise LoadError(f"line {line}: no value for the id field '{spec.id_field}'")
        key = _value(record[spec.id_field])
    names = spec.metadata_fields
    if names is None:
        names = tuple(name for name in record if name not in spec.text_fields)
    metadata = {name: _value(record[name]) for name in names if record.get(name) is not None}
    return LoadedDocument(
        source=f"{path}#{key}", elements=[Element(text=text, kind="Record")], metadata=metadata
    )


def _jsonl(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    # Split on \n only: str.splitlines() also splits on U+2028, which JSON strings may hold.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LoadError(f"line {line}: invalid JSON ({exc.msg})") from None
        except RecursionError:  # the decoder recurses per level of nesting
            raise LoadError(f"line {line}: JSON nested too deep") from None
        if not isinstance(record, dict):
            raise LoadError(f"line {line}: not a JSON object")
        yield line, record


def _csv(text: str, spec: RecordSpec, max_bytes: int) -> Iterator[tuple[int, dict[str, Any]]]:
    # A long text column must not hit csv's default 128 KiB field limit (a process-wide
    # setting; only ever raised here).
    csv.field_size_limit(max(csv.field_size_limit(), min(max_bytes, sys.maxsize)))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        if len(set(header)) != len(header):
            raise LoadError("CSV header repeats a column name")
        wanted = [*spec.text_fields, *([spec.id_field] if spec.id_field else [])]
        missing = [name for name in wanted if name not in header]
        if missing:
            raise LoadError(f"CSV has no column named '{missing[0]}'")
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue
            if len(row) > len(header):
                raise LoadError(f"line {line}: {len(row)} fields, the header has {len(header)}")
            yield line, dict(zip(header, row, strict=False))
    except csv.Error as exc:
        raise LoadError(f"line {reader.line_num}: malformed CSV ({exc})") from None


def load_records(
    path: Path, data: bytes, *, spec: RecordSpec | None, max_bytes: int
) -> list[LoadedDocument]:
    """Load a JSONL or CSV export as one document per record.

    Args:
        path: The file (``.jsonl``/``.ndjson``: one JSON object a line; ``.csv``: a header
            row, comma-separated, RFC 4180 quoting).
        data: Its content.
        spec: The fields that form text, id and metadata.
        max_bytes: The file size limit (also the CSV field size limit).

    Returns:
        One document per record that has text, in file order.

    Raises:
        LoadError: No spec, not UTF-8, malformed lines, a missing id or column, duplicate
            ids, or no record with text.
    """
    if spec is None:
        raise LoadError("a JSONL/CSV file needs a record spec: the fields that form the text")
    text = decode_text(data)
    rows = _csv(text, spec, max_bytes) if path.suffix.lower() == ".csv" else _jsonl(text)
    documents: list[LoadedDocument] = []
    seen: dict[str, int] = {}
    for line, record in rows:
        document = _document(path, line, record, spec)
        if document is None:
            continue
        if document.source in seen:
            raise LoadError(
                f"line {line}: duplicate id '{document.source.rpartition('#')[2]}' "
                f"(first on line {seen[document.source]})"
            )
        seen[document.source] = line
        documents.append(document)
    if not documents:
        raise LoadError(f"no text content (no record has {', '.join(spec.text_fields)})")
    return documents
