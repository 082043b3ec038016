from __future__ import annotations

import pytest

from app.ingest.clean import (
    boilerplate_key,
    clean_document,
    clean_documents,
    clean_text,
    is_near_empty,
    strip_boilerplate,
)
from app.ingest.model import Element, LoadedDocument


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (
            "The \ufb01le is\u00a0 ready",
            "NarrativeText",
            "The file is ready",
        ),  # NFKC ligature, nbsp
        ("Ｆｕｌｌ\u3000width", "NarrativeText", "Full width"),
        ("soft\u00adhyphen zero\u200bwidth\ufeff", "NarrativeText", "softhyphen zerowidth"),
        ("bell\x07 null\x00 esc\x1b[0m", "NarrativeText", "bell null esc[0m"),
        ("a\r\nb\rc", "NarrativeText", "a\nb\nc"),
        ("  one  \t two \n\n\n\n three  ", "NarrativeText", "one two\n\nthree"),
        ("def f():\n\tif x:  \n\t    return 1\x07\n", "Code", "def f():\n\tif x:\n\t    return 1"),
        ("a  |  b\tc\n\n\n\nd", "Table", "a | b\tc\n\nd"),
        (" \n\t \x0c ", "NarrativeText", ""),
    ],
)
def test_clean_text(raw: str, kind: str, expected: str) -> None:
    assert clean_text(raw, kind=kind) == expected
    assert clean_text(expected, kind=kind) == expected  # idempotent


def test_clean_document_drops_empty_elements_and_cleans_headings() -> None:
    doc = LoadedDocument(
        "a.md",
        [
            Element("Intro\u00a0 duction", "Title"),
            Element("  \n \u200b ", "NarrativeText"),
            Element("Body  text.", "NarrativeText", page=2, heading_path=("Intro\u00a0 duction",)),
        ],
        metadata={"lang": "en"},
    )
    cleaned = clean_document(doc)
    assert [e.text for e in cleaned.elements] == ["Intro duction", "Body text."]
    assert cleaned.elements[1].heading_path == ("Intro duction",)
    assert cleaned.elements[1].page == 2
    assert cleaned.metadata == {"lang": "en"} and cleaned.source == "a.md"
    assert len(doc.elements) == 3  # the input is not modified


def _site_page(i: int) -> LoadedDocument:
    return LoadedDocument(
        f"https://docs.example/p{i}.html",
        [
            Element("Prev Up Next", "NarrativeText"),
            Element("Home | Docs | Blog", "NarrativeText"),
            Element(f"Chapter {i}: Topic number {i}", "Title"),
            Element(f"Unique body text of page {i} about subject {i * 7}.", "NarrativeText"),
        ]
        + ([Element("Seen in two pages only", "NarrativeText")] if i < 2 else [])
        + [
            Element("Examples", "Title"),
            Element(f"Example content {i}: SELECT {i};", "NarrativeText"),
            Element("Navigation", "Title"),
            Element("Table of Contents", "NarrativeText"),
            Element("Copyright © 1996-2024 The Example Group", "NarrativeText"),
        ],
    )


def test_strip_boilerplate_across_a_ten_document_batch() -> None:
    docs = [_site_page(i) for i in range(10)]
    docs.append(LoadedDocument("r.csv#1", [Element("status: open", "Record")]))
    docs += [LoadedDocument(f"r.csv#{i}", [Element("status: open", "Record")]) for i in range(2, 6)]
    stripped, report = strip_boilerplate(docs)
    for i, doc in enumerate(stripped[:10]):
        texts = [e.text for e in doc.elements if e.text != "Seen in two pages only"]
        assert texts == [
            f"Chapter {i}: Topic number {i}",  # a unique title stays
            f"Unique body text of page {i} about subject {i * 7}.",
            "Examples",  # a repeated title over unique content stays
            f"Example content {i}: SELECT {i};",
        ]
        seen = [e.text for e in doc.elements].count("Seen in two pages only")
        assert seen == (1 if i < 2 else 0)  # in fewer than 3 documents: kept
        assert "Navigation" not in texts  # its whole section is navigation
    assert all(d.elements[0].text == "status: open" for d in stripped[10:])  # records are data
    assert report.elements == 10 * 5
    assert "copyright © 1996-2024 the example group" in report.patterns


def test_strip_boilerplate_needs_enough_documents() -> None:
    docs = [_site_page(i) for i in range(2)]
    stripped, report = strip_boilerplate(docs)
    assert report.elements == 0 and stripped[0].elements == docs[0].elements
    stripped, report = strip_boilerplate(docs[:1], known={boilerplate_key("Prev Up Next")})
    assert report.elements == 1 and stripped[0].elements[0].text == "Home | Docs | Blog"


_WORDS = "zero revenue costs margins staff offices risks outlook debt cash equity".split()


def _pdf(pages: int) -> LoadedDocument:
    elements = [Element("Annual Report 2024", "Title", page=1)]
    for p in range(1, pages + 1):
        elements += [
            Element("ACME Corp. — Confidential", "Header", page=p),
            Element(f"Paragraph one of page {p}: {_WORDS[p]} grew.", page=p),
            Element(f"Paragraph two on {_WORDS[p]}.\nIt has two lines: {_WORDS[-p]}.", page=p),
            Element(f"Page {p} of {pages}", "Footer", page=p),
        ]
    elements.insert(8, Element("Only on this page and one more", page=2))
    elements.append(Element("Only on this page and one more", page=pages))
    return LoadedDocument("report.pdf", elements)


def test_strip_boilerplate_removes_running_headers_and_footers_of_pages() -> None:
    stripped, report = strip_boilerplate([_pdf(10)])
    texts = [e.text for e in stripped[0].elements]
    assert texts[0] == "Annual Report 2024"
    assert not any("Confidential" in t or t.startswith("Page ") for t in texts)
    assert sum("Only on this page" in t for t in texts) == 2  # 2 of 10 pages: kept
    assert sum("Paragraph" in t for t in texts) == 20 and "It has two lines: equity." in texts[2]
    assert report.page_lines == 20 and report.page_patterns == {
        "page # of #",
        "acme corp. — confidential",
    }
    short, report = strip_boilerplate([_pdf(2)])  # too few pages to tell
    assert report.page_lines == 0 and short[0].elements == _pdf(2).elements


def test_strip_boilerplate_removes_furniture_lines_inside_page_elements() -> None:
    pages = [
        Element(f"ACME Report\nBody: {_WORDS[p]} and {_WORDS[-p]}.\n{p}", page=p)
        for p in range(1, 7)
    ]
    stripped, report = strip_boilerplate([LoadedDocument("scan.pdf", pages)])
    assert [e.text for e in stripped[0].elements] == [
        f"Body: {_WORDS[p]} and {_WORDS[-p]}." for p in range(1, 7)
    ]
    assert report.page_lines == 12


def test_is_near_empty() -> None:
    assert is_near_empty(LoadedDocument("a", [Element("Redirecting…"), Element("-- 1 --")]))
    assert is_near_empty(LoadedDocument("b", []))
    doc = LoadedDocument("c", [Element("=" * 80 + "\nAn actual sentence of real content.")])
    assert not is_near_empty(doc)
    assert is_near_empty(doc, min_chars=100)


def test_clean_documents_reports_counts() -> None:
    docs = [_site_page(i) for i in range(4)]
    docs.append(LoadedDocument("empty.html", [Element("Prev Up Next"), Element(" \x00 ")]))
    docs.append(LoadedDocument("t.csv#7", [Element("id: 7", "Record")]))
    kept, report = clean_documents(docs)
    assert [d.source for d in kept] == [d.source for d in docs[:4]] + ["t.csv#7"]
    assert report.near_empty == ["empty.html"]
    assert report.empty_elements == 1
    assert report.boilerplate.elements == 4 * 5 + 1
