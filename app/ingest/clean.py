"""Cleaning of loaded documents: normalisation, boilerplate removal and near-empty detection.

Boilerplate is found by frequency, never by a word list: a short element whose text recurs in
many documents of a batch (site navigation, "Prev Up Next" bars, copyright footers), or a short
line at the top or bottom of many pages of one PDF (running headers, footers, page numbers).
Texts are compared casefolded and whitespace-collapsed; on pages digits are masked too, so
"Page 3 of 9" and "Page 4 of 9" are one footer (across documents they are not: templated
content such as "Price: 12 USD" must survive).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

from app.ingest.model import Element, LoadedDocument

__all__ = [
    "BoilerplateReport",
    "CleanReport",
    "boilerplate_key",
    "clean_document",
    "clean_documents",
    "clean_text",
    "is_near_empty",
    "strip_boilerplate",
]

# Kinds whose short repeated texts are content, not furniture (CSV rows, code, tables).
PROTECTED_KINDS = frozenset({"Record", "Code", "Table", "Formula"})
_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))  # soft hyphen, zero-widths
_HSPACE = re.compile(r"[^\S\n]+")
_TRAILING = re.compile(r"[^\S\n]+$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{3,}")
_DIGITS = re.compile(r"\d+")


def clean_text(text: str, *, kind: str = "NarrativeText") -> str:
    r"""Normalise one element's text.

    NFKC, line breaks to ``\n``, control and zero-width characters removed (``\n`` and
    ``\t`` kept), then whitespace: prose collapses each run within a line to one space and
    trims lines; ``Code`` keeps indentation and inner spacing and only loses trailing blanks;
    ``Table`` keeps tabs (cell separators). Paragraph breaks survive as one blank line.
    """
    text = unicodedata.normalize("NFKC", _LINE_BREAKS.sub("\n", text))
    text = _CONTROL.sub("", text).translate(_INVISIBLE)
    if kind == "Code":
        text = _TRAILING.sub("", text)
    elif kind == "Table":
        text = "\n".join(re.sub(r" {2,}", " ", line).strip(" ") for line in text.split("\n"))
    else:
        text = "\n".join(_HSPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip("\n" if kind == "Code" else None)


def _clean_heading(title: str) -> str:
    return " ".join(clean_text(title, kind="Title").split())


def clean_document(doc: LoadedDocument) -> LoadedDocument:
    """Return a copy of ``doc`` with every element cleaned and empty elements dropped."""
    elements: list[Element] = []
    for element in doc.elements:
        text = clean_text(element.text, kind=element.kind)
        if text.strip():
            path = tuple(_clean_heading(title) for title in element.heading_path)
            elements.append(replace(element, text=text, heading_path=path))
    return LoadedDocument(doc.source, elements, dict(doc.metadata))


def boilerplate_key(text: str, *, mask_digits: bool = False) -> str:
    """Return the comparison key of a candidate boilerplate text."""
    key = " ".join(text.casefold().split())
    return _DIGITS.sub("#", key) if mask_digits else key


@dataclass(slots=True)
class BoilerplateReport:
    """What :func:`strip_boilerplate` removed."""

    elements: int = 0
    """Elements dropped because they repeat across documents of the batch."""
    page_lines: int = 0
    """Lines dropped because they repeat at the top or bottom of a document's pages."""
    patterns: set[str] = field(default_factory=set)
    """Keys of the elements removed across documents: pass them as ``known`` to later batches."""
    page_patterns: set[str] = field(default_factory=set)
    """Digit-masked keys of the page lines removed (specific to their documents)."""


def _eligible(element: Element, max_chars: int) -> bool:
    return element.kind not in PROTECTED_KINDS and len(element.text) <= max_chars


def _unique_titles(elements: Iterable[Element]) -> set[str]:
    counts = Counter(e.text for e in elements if e.kind == "Title")
    return {text for text, n in counts.items() if n == 1}


def _repeated_across_docs(
    docs: Sequence[LoadedDocument], *, min_docs: int, doc_ratio: float, max_chars: int
) -> set[str]:
    frequency: Counter[str] = Counter()
    for doc in docs:
        frequency.update({boilerplate_key(e.text) for e in doc.elements if _eligible(e, max_chars)})
    need = max(min_docs, math.ceil(doc_ratio * len(docs)))
    return {key for key, n in frequency.items() if n >= need}


def _page_edges(doc: LoadedDocument, edge_lines: int) -> dict[int, list[tuple[int, int]]]:
    """Map each page to its first and last ``edge_lines`` lines as (element, line) indexes."""
    lines_by_page: dict[int, list[tuple[int, int]]] = {}
    for i, element in enumerate(doc.elements):
        if element.page is not None and element.kind not in PROTECTED_KINDS:
            page_lines = lines_by_page.setdefault(element.page, [])
            page_lines.extend((i, j) for j, line in enumerate(element.text.split("\n")) if line)
    return {
        page: lines[:edge_lines] + lines[max(edge_lines, len(lines) - edge_lines) :]
        for page, lines in lines_by_page.items()
    }


def _page_furniture(
    doc: LoadedDocument, *, page_ratio: float, min_pages: int, max_chars: int, edge_lines: int
) -> set[tuple[int, int]]:
    """Return the (element, line) indexes of lines repeated on the edges of many pages."""
    edges = _page_edges(doc, edge_lines)
    if len(edges) < min_pages:
        return set()
    lines = [element.text.split("\n") for element in doc.elements]
    keyed = {
        page: [(pos, boilerplate_key(lines[pos[0]][pos[1]], mask_digits=True)) for pos in positions]
        for page, positions in edges.items()
    }
    pages_with: Counter[str] = Counter()
    for entries in keyed.values():
        pages_with.update({key for pos, key in entries if len(lines[pos[0]][pos[1]]) <= max_chars})
    need = max(2, math.ceil(page_ratio * len(edges)))
    frequent = {key for key, n in pages_with.items() if n >= need}
    keep = _unique_titles(doc.elements)
    return {
        pos
        for entries in keyed.values()
        for pos, key in entries
        if key in frequent
        and not (doc.elements[pos[0]].kind == "Title" and doc.elements[pos[0]].text in keep)
    }


def _drop_flags(
    elements: Sequence[Element], repeated: set[str], titles: Counter[str], max_chars: int
) -> list[bool]:
    """Flag repeated elements; a repeated Title only if its whole section is flagged too.

    So "Navigation" over a list of links goes, while "Examples" over unique content stays.
    """
    drop = [
        _eligible(e, max_chars) and boilerplate_key(e.text) in repeated and e.kind != "Title"
        for e in elements
    ]
    for i, element in enumerate(elements):
        if element.kind != "Title" or not _eligible(element, max_chars):
            continue
        if titles[element.text] == 1 or boilerplate_key(element.text) not in repeated:
            continue
        end = next((j for j in range(i + 1, len(elements)) if elements[j].kind == "Title"), None)
        section = range(i + 1, len(elements) if end is None else end)
        drop[i] = all(drop[j] for j in section) and (len(section) > 0 or end is None)
    return drop


def strip_boilerplate(
    docs: Sequence[LoadedDocument],
    *,
    min_docs: int = 3,
    doc_ratio: float = 0.3,
    page_ratio: float = 0.5,
    min_pages: int = 3,
    max_chars: int = 200,
    edge_lines: int = 3,
    known: Collection[str] = (),
) -> tuple[list[LoadedDocument], BoilerplateReport]:
    """Remove short texts that repeat across the batch or across one document's pages.

    A Title whose exact text occurs once (in the batch for the cross-document rule, in its
    document for the page rule) is never removed, and a repeated Title only with its whole
    section. Code, tables and records are never touched.

    Args:
        docs: Cleaned documents of one batch (one ingest run of one tenant).
        min_docs: An element text must occur in at least this many documents...
        doc_ratio: ...and in at least this share of the batch to count as boilerplate.
        page_ratio: A line must be on the edges of at least this share of a document's pages.
        min_pages: Documents with fewer pages are not searched for running headers.
        max_chars: Longer texts are never boilerplate.
        edge_lines: Lines at the top and at the bottom of a page that may be headers/footers.
        known: Keys learned from earlier batches, removed as well (optional).

    Returns:
        The documents without boilerplate (elements left empty are dropped) and a report.
    """
    report = BoilerplateReport()
    repeated = _repeated_across_docs(
        docs, min_docs=min_docs, doc_ratio=doc_ratio, max_chars=max_chars
    ) | set(known)
    title_counts = Counter(e.text for doc in docs for e in doc.elements if e.kind == "Title")
    out: list[LoadedDocument] = []
    for doc in docs:
        drop_lines = _page_furniture(
            doc,
            page_ratio=page_ratio,
            min_pages=min_pages,
            max_chars=max_chars,
            edge_lines=edge_lines,
        )
        drop = _drop_flags(doc.elements, repeated, title_counts, max_chars)
        elements: list[Element] = []
        for i, element in enumerate(doc.elements):
            if drop[i]:
                report.elements += 1
                report.patterns.add(boilerplate_key(element.text))
                continue
            lines = element.text.split("\n")
            kept = [line for j, line in enumerate(lines) if (i, j) not in drop_lines]
            if len(kept) < len(lines):
                report.page_lines += len(lines) - len(kept)
                report.page_patterns.update(
                    boilerplate_key(line, mask_digits=True)
                    for j, line in enumerate(lines)
                    if (i, j) in drop_lines
                )
                text = _BLANK_LINES.sub("\n\n", "\n".join(kept)).strip()
                if not text:
                    continue
                element = replace(element, text=text)
            elements.append(element)
        out.append(LoadedDocument(doc.source, elements, dict(doc.metadata)))
    return out, report


def is_near_empty(doc: LoadedDocument, *, min_chars: int = 20) -> bool:
    """Return True if ``doc`` has fewer than ``min_chars`` letters and digits in all."""
    seen = 0
    for element in doc.elements:
        for ch in element.text:
            if ch.isalnum():
                seen += 1
                if seen >= min_chars:
                    return False
    return True


@dataclass(slots=True)
class CleanReport:
    """Counts from :func:`clean_documents`, for the ingest report."""

    empty_elements: int = 0
    boilerplate: BoilerplateReport = field(default_factory=BoilerplateReport)
    near_empty: list[str] = field(default_factory=list)
    """Sources of the documents dropped as near-empty."""


def clean_documents(
    docs: Sequence[LoadedDocument], *, min_chars: int = 20, known_boilerplate: Collection[str] = ()
) -> tuple[list[LoadedDocument], CleanReport]:
    """Clean a batch, strip its boilerplate and drop near-empty documents (records never are).

    Cleaning is idempotent, so documents cleaned earlier (in a parse worker) may pass again.
    """
    report = CleanReport()
    cleaned = [clean_document(doc) for doc in docs]
    report.empty_elements = sum(
        len(a.elements) - len(b.elements) for a, b in zip(docs, cleaned, strict=True)
    )
    stripped, report.boilerplate = strip_boilerplate(cleaned, known=known_boilerplate)
    kept: list[LoadedDocument] = []
    for doc in stripped:
        is_record = any(e.kind == "Record" for e in doc.elements)  # short rows are still data
        if not is_record and is_near_empty(doc, min_chars=min_chars):
            report.near_empty.append(doc.source)
        else:
            kept.append(doc)
    return kept, report
