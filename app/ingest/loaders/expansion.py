"""Bounds on what a file expands to, checked on its bytes before any parser reads it.

A decompression bomb is small on disk and huge once parsed: a 400 KB DOCX whose XML inflates
to 100 MB, a PDF whose one compressed stream holds gigabytes of zeros, XML whose entities
expand a billion times, HTML or Markdown nested deeper than a parser's recursion. The size
limit sees only the stored bytes; these checks bound the rest cheaply, without building
anything the file describes:

* Zip-based formats (DOCX): the central directory's declared sizes (the zip reader never
  returns more than an entry declares: a lying entry fails its CRC check), the entry count
  and each large entry's compression ratio. XML parts may not declare a DTD: Office files
  never do, and a DTD is how entity expansion (billion laughs) and external entities (XXE)
  get in.
* PDF: every zlib (FlateDecode) stream is inflated into a counter, never kept, and the total
  is capped. Image streams are not counted: text extraction never decodes them. Other
  filters (LZW, a zlib stream under a second filter) and encrypted streams are left to the
  parser process's memory cap (:mod:`app.ingest.sandbox`).
* Markdown: blockquote and indentation nesting. HTML nesting is measured on the parsed tree
  (:func:`app.ingest.loaders.markup.strip_navigation`), since tag soup cannot be counted
  without parsing it.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from app.ingest.loaders._files import LoadError

__all__ = ["ExpansionLimits", "check_expansion", "check_markdown", "check_pdf", "check_zip"]

_MIB = 1 << 20
# Entries smaller than this may compress by any ratio (a short repetitive part is no threat).
_RATIO_FLOOR = _MIB
_CHUNK = 1 << 16
# The end of a PDF "stream" keyword: CRLF or LF (a lone CR is tolerated, as parsers do).
_PDF_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_PDF_IMAGE = re.compile(rb"/Subtype\s*/Image\b")
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_XML_PARTS = (".xml", ".rels", ".vml")
_QUOTE_PREFIX = re.compile(r"[ \t]*(?:>[ \t]*)+")


@dataclass(frozen=True, slots=True)
class ExpansionLimits:
    """How far a file may expand; see ``ingest.*`` settings of the same names."""

    max_expanded_bytes: int = 100_000_000
    """Bytes a file may inflate to (zip entries' sizes, PDF streams' decoded bytes)."""
    max_ratio: int = 100
    """Inflated/compressed ratio allowed for one zip entry of over 1 MiB."""
    max_entries: int = 10_000
    """Entries a zip-based file may hold."""
    max_nesting: int = 256
    """Deepest HTML element nesting, Markdown blockquote or indentation nesting."""


def check_expansion(suffix: str, data: bytes, limits: ExpansionLimits) -> None:
    """Refuse a file whose content would expand beyond ``limits`` once parsed.

    Args:
        suffix: The file's lower-case suffix (it picks the checks, as it picks the loader).
        data: The file's bytes.
        limits: The bounds.

    Raises:
        LoadError: A decompression bomb, a DTD in an XML part, or nesting too deep.
    """
    if suffix == ".docx" or data.startswith(b"PK\x03\x04"):
        check_zip(data, limits)
    elif suffix == ".pdf":
        check_pdf(data, limits)
    elif suffix in {".md", ".markdown"}:
        check_markdown(data, limits)


def _bomb(what: str, setting: str) -> LoadError:
    return LoadError(f"decompression bomb: {what} (ingest.{setting})")


def check_zip(data: bytes, limits: ExpansionLimits) -> None:
    """Bound a zip-based file: entry count, declared sizes, ratios, no DTD in XML parts.

    A file that is not a readable zip passes: its loader reports it as corrupt.

    Raises:
        LoadError: Too many entries, too large or too compressed once inflated, or an XML
            part that declares a DTD.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        return
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_entries:
            raise LoadError(f"archive has {len(entries)} entries (more than {limits.max_entries})")
        total = 0
        for entry in entries:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > _RATIO_FLOOR and ratio > limits.max_ratio:
                what = (
                    f"a part inflates {ratio:.0f} times "
                    f"({entry.compress_size} bytes to {entry.file_size})"
                )
                raise _bomb(what, f"max_expansion_ratio={limits.max_ratio}")
            total += entry.file_size
            if total > limits.max_expanded_bytes:
                what = f"its parts inflate to more than {limits.max_expanded_bytes} bytes"
                raise _bomb(what, f"max_expanded_bytes={limits.max_expanded_bytes}")
        for entry in entries:
            if entry.filename.lower().endswith(_XML_PARTS):
                _refuse_dtd(archive, entry)


def _refuse_dtd(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> None:
    tail = b""
    try:
        with archive.open(entry) as part:
            while chunk := part.read(_MIB):
                window = tail + chunk
                if any(marker in window for marker in _DTD_MARKERS):
                    raise LoadError(
                        "an XML part declares a DTD (entity declarations are refused: "
                        "entity expansion and external entities)"
                    )
                tail = window[-16:]
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # A wrong CRC (an entry larger than it declares), an unknown method, encryption.
        raise LoadError(f"corrupt archive: {type(exc).__name__}: {exc}") from None


def check_pdf(data: bytes, limits: ExpansionLimits) -> None:
    """Bound the bytes a PDF's zlib streams inflate to (image streams left out).

    Each stream is inflated into a counter, 64 KiB of input at a time with at most 1 MiB of
    output per step, so the check holds little memory whatever the stream claims.

    Raises:
        LoadError: The streams inflate to more than ``limits.max_expanded_bytes``.
    """
    total = 0
    for match in _PDF_STREAM.finditer(data):
        start = match.end()
        if not _is_zlib(data, start) or _is_image(data, match.start()):
            continue
        total += _inflated_size(data, start, limits.max_expanded_bytes - total)
        if total > limits.max_expanded_bytes:
            what = f"its streams inflate to more than {limits.max_expanded_bytes} bytes"
            raise _bomb(what, f"max_expanded_bytes={limits.max_expanded_bytes}")


def _is_zlib(data: bytes, at: int) -> bool:
    if at + 2 > len(data):
        return False
    cmf, flags = data[at], data[at + 1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and ((cmf << 8) | flags) % 31 == 0


def _is_image(data: bytes, keyword: int) -> bool:
    """Whether the stream's dictionary (since the previous ``obj``) says it is an image."""
    opening = data.rfind(b"obj", max(0, keyword - 4096), keyword)
    return bool(_PDF_IMAGE.search(data, max(0, opening, keyword - 4096), keyword))


def _inflated_size(data: bytes, start: int, budget: int) -> int:
    """Inflate the zlib stream at ``start``; stop past ``budget`` bytes, at its end or an error."""
    inflater = zlib.decompressobj()
    size = 0
    offset = start
    pending = b""
    try:
        while size <= budget:
            if not pending:
                if offset >= len(data):
                    break
                pending = data[offset : offset + _CHUNK]
                offset += _CHUNK
            size += len(inflater.decompress(pending, _MIB))
            if inflater.eof:
                break
            pending = inflater.unconsumed_tail
    except zlib.error:
        pass  # corrupt from here: the parser decodes no more than this either
    return size


def check_markdown(data: bytes, limits: ExpansionLimits) -> None:
    """Bound Markdown's blockquote and indentation nesting (the renderer recurses on both).

    Raises:
        LoadError: A line nested deeper than ``limits.max_nesting``.
    """
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        quotes = _QUOTE_PREFIX.match(line)
        depth = quotes.group().count(">") if quotes else 0
        indent = len(line) - len(line.lstrip(" \t"))
        depth = max(depth, (indent + line[:indent].count("\t") * 3) // 2)
        if depth > limits.max_nesting:
            raise LoadError(
                f"line {number} is nested {depth} levels deep "
                f"(more than ingest.max_nesting={limits.max_nesting})"
            )
