"""Loaders for HTML, Markdown, plain text and DOCX, built on unstructured's partitioners."""

from __future__ import annotations

import io
import zipfile

from app.ingest.loaders._files import LoadError, decode_text
from app.ingest.loaders._unstructured import partitioners, to_elements
from app.ingest.model import Element

__all__ = ["load_docx", "load_html", "load_markdown", "load_plain_text", "strip_navigation"]

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


def strip_navigation(markup: str) -> str:
    """Remove navigation (``<nav>``, page headers/footers, menus, tables of contents).

    Args:
        markup: An HTML document.

    Returns:
        The document without them, re-serialised; ``""`` for a document with no elements.
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
    for node in root.xpath(_NAV_XPATH):
        node.drop_tree()
    return str(lxml.html.tostring(root, encoding="unicode"))


def load_html(data: bytes) -> list[Element]:
    """Partition an HTML page into elements, without its navigation.

    Raises:
        LoadError: Binary or undecodable content.
    """
    markup = strip_navigation(decode_text(data, html=True))
    if not markup.strip():
        return []
    raw = partitioners().html(text=markup, languages=_NO_LANGUAGE_DETECTION)
    return to_elements(raw)


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
