"""Loaders for HTML, Markdown, plain text and DOCX, built on unstructured's partitioners."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from app.ingest.loaders._files import LoadError, decode_text
from app.ingest.loaders._unstructured import partitioners, to_elements
from app.ingest.model import Element

__all__ = [
    "load_docx",
    "load_html",
    "load_markdown",
    "load_plain_text",
    "page_title",
    "strip_navigation",
    "titled",
]

# Navigation, not content. unstructured already drops <nav>, <script>, <style> and forms.
# A <header>/<footer> inside an article or section is kept: it holds that part's title or notes.
_NAV_CLASSES = (
    *("navheader", "navfooter", "navbar", "navigation", "breadcrumb", "breadcrumbs"),
    *("menu", "toc"),
)
_NAV_XPATH = " | ".join(
    [
        "//nav",
        "//header[not(ancestor::article or ancestor::main or ancestor::section)]",
        "//footer[not(ancestor::article or ancestor::main or ancestor::section)]",
        "//*[@role='navigation' or @role='banner' or @role='contentinfo' or @role='search']",
        *(
            f"//*[contains(concat(' ', normalize-space(@class), ' '), ' {c} ')]"
            for c in _NAV_CLASSES
        ),
    ]
)
# unstructured's own switch for "no language detection" (it would run langdetect on every file).
_NO_LANGUAGE_DETECTION = [""]
# unstructured walks the element tree recursively: deeper nesting is refused before it does.
MAX_DEPTH = 256
# What libxml2's HTML parser builds at most (deeper elements and their text are dropped).
_PARSER_DEPTH = 255


def _depth(events: Iterable[tuple[str, Any]], limit: int) -> int:
    """The element nesting depth told by ``start``/``end`` events, counted up to ``limit + 1``."""
    depth = deepest = 0
    for event, _ in events:
        depth += 1 if event == "start" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def strip_navigation(markup: str, *, max_depth: int = MAX_DEPTH) -> str:
    """Remove navigation (``<nav>``, page headers/footers, menus, tables of contents).

    Args:
        markup: An HTML document.
        max_depth: The deepest element nesting allowed (``ingest.max_nesting``).

    Returns:
        The document without them, re-serialised; ``""`` for a document with no elements.

    Raises:
        LoadError: Elements nested deeper than ``max_depth``.
    """
    # lxml ships no type information (types-lxml would be a dev dependency).
    import lxml.etree  # type: ignore[import-untyped]
    import lxml.html  # type: ignore[import-untyped]

    # Parsed as UTF-8 bytes: lxml refuses a str that starts with an XML encoding declaration.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True)
    try:
        root = lxml.html.document_fromstring(markup.encode("utf-8"), parser=parser)
    except (ValueError, lxml.etree.ParserError):
        return ""
    # libxml2 stops building the tree 256 elements deep and drops the rest of the text.
    limits = [e.message for e in parser.error_log if e.type_name == "ERR_RESOURCE_LIMIT"]
    if (
        any("depth" in message for message in limits)
        or _depth(lxml.etree.iterwalk(root, events=("start", "end")), max_depth) > max_depth
    ):
        limit = min(max_depth, _PARSER_DEPTH)
        raise LoadError(f"HTML elements nested more than {limit} deep (ingest.max_nesting)")
    if limits:
        raise LoadError(f"HTML beyond the parser's limits ({limits[0].strip()})")
    for node in root.xpath(_NAV_XPATH):
        node.drop_tree()
    return str(lxml.html.tostring(root, encoding="unicode"))


def load_html(data: bytes, *, max_depth: int = MAX_DEPTH) -> list[Element]:
    """Partition an HTML page into elements, without its navigation.

    Args:
        data: The page's bytes.
        max_depth: The deepest element nesting allowed.

    Raises:
        LoadError: Binary or undecodable content, or nesting deeper than ``max_depth``.
    """
    markup = strip_navigation(decode_text(data, html=True), max_depth=max_depth)
    if not markup.strip():
        return []
    raw = partitioners().html(text=markup, languages=_NO_LANGUAGE_DETECTION)
    return titled(to_elements(raw), page_title(markup))


def page_title(markup: str) -> str:
    """The text of an HTML document's ``<title>``, whitespace collapsed; ``""`` if none."""
    import lxml.etree
    import lxml.html

    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(markup.encode("utf-8"), parser=parser)
    except (ValueError, lxml.etree.ParserError):
        return ""
    found = root.find(".//head/title")
    return " ".join(found.text_content().split()) if found is not None else ""


def titled(elements: list[Element], title: str) -> list[Element]:
    """Put a page's ``<title>`` first in every heading path, unless its first heading says it.

    unstructured drops ``<head>``, so a page whose name is only in its ``<title>`` (and in a
    styled ``<div>``, as on the SQLite documentation's pages, whose ``<h1>`` elements are
    numbered sections) gave its chunks heading paths such as "2. Description > 2.1. VACUUM
    with an INTO clause" that never say VACUUM. A first heading that holds the title, or is
    held by it ("Routine Vacuuming" in "Routine Vacuuming | Example Docs"), already names the
    page.

    Args:
        elements: The page's elements, heading paths built.
        title: The page's title (:func:`page_title`).
    """
    heads = (" ".join(e.text.split()).casefold() for e in elements if e.kind == "Title")
    first, name = next(heads, None), title.casefold()
    if not name or (first is not None and (first in name or name in first)):
        return elements
    return [replace(e, heading_path=(title, *e.heading_path)) for e in elements]


def load_markdown(data: bytes) -> list[Element]:
    """Partition Markdown (rendered to HTML by Python-Markdown) into elements.

    Raises:
        LoadError: Binary or undecodable content.
    """
    text = decode_text(data)
    if not text.strip():
        return []
    return to_elements(partitioners().markdown(text=text, languages=_NO_LANGUAGE_DETECTION))


def load_plain_text(data: bytes) -> list[Element]:
    """Partition plain text into paragraphs; short heading-like lines become Titles.

    Raises:
        LoadError: Binary or undecodable content.
    """
    text = decode_text(data)
    if not text.strip():
        return []
    return to_elements(partitioners().text(text=text, languages=_NO_LANGUAGE_DETECTION))


def load_docx(data: bytes) -> list[Element]:
    """Partition a Word document; its page headers, footers and page breaks are dropped.

    Raises:
        LoadError: Not a DOCX (a legacy ``.doc``, an encrypted file, other content) or a
            corrupt one.
    """
    if not data.startswith(b"PK\x03\x04"):
        # Encrypted DOCX files and legacy .doc files are OLE containers, not zips.
        kind = "an encrypted or legacy Word file" if data.startswith(b"\xd0\xcf\x11\xe0") else ""
        raise LoadError(f"not a DOCX file{f' ({kind})' if kind else ''}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "word/document.xml" not in archive.namelist():
                raise LoadError("not a DOCX file (no word/document.xml)")
    except zipfile.BadZipFile as exc:
        raise LoadError(f"corrupt DOCX: {exc}") from None
    try:
        raw = partitioners().docx(
            file=io.BytesIO(data), include_page_breaks=False, languages=_NO_LANGUAGE_DETECTION
        )
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:  # damaged parts inside the zip
        raise LoadError(f"corrupt DOCX: {type(exc).__name__}: {exc}") from None
    return to_elements(raw)
