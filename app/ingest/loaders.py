"""A simple loader for Markdown, plain text and HTML files."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

__all__ = ["SUPPORTED_SUFFIXES", "LoadError", "load_text"]

SUPPORTED_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".html", ".htm"})
# Page furniture whose text is not document content.
_SKIP_TAGS = frozenset({"script", "style", "nav", "header", "footer", "noscript", "template"})
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "section",
        "article",
        "table",
        "blockquote",
        "dt",
        "dd",
        "title",
    }
)


class LoadError(Exception):
    """A file that cannot be loaded, with a reason fit for a report."""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip_depth:
            self._skip_depth -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def _normalise(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current) if _is_prose(current) else "\n".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current) if _is_prose(current) else "\n".join(current))
    return "\n\n".join(paragraphs)


def _is_prose(lines: list[str]) -> bool:
    # Hard-wrapped prose is joined into one line; lists and headings keep their breaks.
    return not any(line.startswith(("#", "-", "*", "|", ">")) for line in lines)


def load_text(path: Path, *, max_bytes: int) -> str:
    """Read a supported file and return its text.

    Args:
        path: A ``.md``, ``.txt`` or ``.html`` file.
        max_bytes: Larger files are refused.

    Returns:
        The document text with whitespace normalised.

    Raises:
        LoadError: Unsupported type, unreadable, too large, not UTF-8 or empty.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"unsupported file type '{suffix or path.name}'")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(f"file too large ({size} bytes > {max_bytes})")
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError("not valid UTF-8 text") from None
    if suffix in {".html", ".htm"}:
        parser = _TextExtractor()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    text = _normalise(text)
    if not text.strip():
        raise LoadError("no text content")
    return text
