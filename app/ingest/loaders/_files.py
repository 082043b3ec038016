"""Reading a file for a loader: the size limit, content checks and text decoding."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["LoadError", "decode_text", "read_limited"]

# An HTML file may declare a legacy charset; only the start of the file is searched for it.
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.I)


class LoadError(Exception):
    """A file that cannot be loaded, with a reason fit for a report."""


def read_limited(path: Path, *, max_bytes: int) -> bytes:
    """Return the file's bytes, refusing a file over ``max_bytes`` before reading it.

    Raises:
        LoadError: The file is too large or cannot be read.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(f"file too large ({size} bytes > {max_bytes})")
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # the file grew between stat() and read()
        raise LoadError(f"file too large ({len(data)} bytes > {max_bytes})")
    return data


def decode_text(data: bytes, *, html: bool = False) -> str:
    """Decode a text file: UTF-8 (BOM allowed), or for HTML the charset its ``<meta>`` declares.

    Raises:
        LoadError: Binary content (NUL bytes, e.g. a PDF renamed to ``.txt``) or an
            undecodable encoding.
    """
    if b"\x00" in data[:8192]:
        raise LoadError("binary content in a text file (does the extension match the content?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(data[:4096]) if html else None
    if declared is not None:
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    raise LoadError("not valid UTF-8 text")
