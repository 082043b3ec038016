from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.ingest.chunking import (
    ChunkingConfigError,
    DocChunk,
    chunk_document,
    default_chunk_size,
    default_overlap,
    validate_chunking,
)
from app.ingest.model import Element, LoadedDocument
from app.llm.tokens import ApproxCounter, TokenCounter, default_counter
from app.retrieval.passage import context_line

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SENTENCES = [
    "SQLite does a checkpoint automatically when the WAL file reaches 1000 pages.",
    "Applications can also run checkpoints by hand.",
    "Readers do not block writers and writers do not block readers.",
    "The WAL file is reset after a checkpoint completes (see [1]).",
    "Overly large WAL files hurt read performance!",
]


def _para(n: int, shift: int = 0) -> str:
    return " ".join(SENTENCES[(i + shift) % len(SENTENCES)] for i in range(n))


def _doc() -> LoadedDocument:
    table = "\n".join(f"| row {i} | value {i * 3} | checkpoint |" for i in range(40))
    return LoadedDocument(
        "manual.pdf",
        [
            Element("Write-Ahead Logging", "Title", page=1),
            Element(_para(3), page=1, heading_path=("Write-Ahead Logging",)),
            Element("Checkpoints", "Title", page=1, heading_path=("Write-Ahead Logging",)),
            Element(_para(12, 1), page=2, heading_path=("Write-Ahead Logging", "Checkpoints")),
            Element(
                "- first item\n- second item",
                "ListItem",
                page=3,
                heading_path=("Write-Ahead Logging", "Checkpoints"),
            ),
            Element("Settings", "Title", page=3, heading_path=("Write-Ahead Logging",)),
            Element(table, "Table", page=4, heading_path=("Write-Ahead Logging", "Settings")),
            Element(
                "def f():\n    return 1",
                "Code",
                page=5,
                heading_path=("Write-Ahead Logging", "Settings"),
            ),
        ],
    )


def _check_invariants(
    doc: LoadedDocument, chunks: list[DocChunk], counter: TokenCounter, size: int
) -> None:
    text = doc.text()
    assert chunks
    for c in chunks:
        start, end = c.span
        assert text[start:end] == c.text and c.text == c.text.strip()
        assert counter.count(c.text) == c.tokens or isinstance(counter, ApproxCounter)
        assert counter.count(c.text) <= size
        assert start == 0 or not (text[start - 1].isalnum() and text[start].isalnum())
        assert end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    covered: set[int] = set()
    for c in chunks:
        covered.update(range(*c.span))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())  # nothing lost


@pytest.mark.parametrize(("size", "overlap"), [(254, 32), (60, 10), (25, 5)])
def test_spans_token_limits_and_words_with_the_real_tokenizer(size: int, overlap: int) -> None:
    doc = _doc()
    counter = default_counter()
    _check_invariants(
        doc, chunk_document(doc, counter=counter, size=size, overlap=overlap), counter, size
    )


@pytest.mark.parametrize("counter", [ApproxCounter(), default_counter()], ids=lambda c: c.name)
def test_sample_documents(counter: TokenCounter) -> None:
    for name in ["python-sorting-howto.txt", "python-markdown.md", "NOTICE"]:
        text = (SAMPLES / name).read_text(encoding="utf-8")
        doc = LoadedDocument(name, [Element(p) for p in text.split("\n\n")])
        _check_invariants(
            doc, chunk_document(doc, counter=counter, size=100, overlap=16), counter, 100
        )


def test_sections_titles_heading_paths_and_pages() -> None:
    doc = _doc()
    chunks = chunk_document(doc, counter=default_counter(), size=60, overlap=10)
    first = chunks[0]
    assert first.text.startswith("Write-Ahead Logging\n\nSQLite does")
    assert first.heading_path == ("Write-Ahead Logging",) and first.page == 1
    assert first.kinds == ("Title", "NarrativeText")
    section = [c for c in chunks if c.heading_path == ("Write-Ahead Logging", "Checkpoints")]
    assert len(section) > 2
    assert section[0].text.startswith("Checkpoints\n\nApplications can also")  # title + body
    assert [c.page for c in section][:2] == [1, 2]  # page of the first character
    assert "- first item" in section[-1].text and section[-1].page in (2, 3)
    assert all(not c.text.startswith("Checkpoints") for c in section[1:])
    # no chunk spans two sections
    starts = [s for s, _ in doc.offsets()]
    assert not any(
        c.span[0] < starts[2] < c.span[1] or c.span[0] < starts[5] < c.span[1] for c in chunks
    )


def test_overlap_is_whole_sentences_or_words_within_a_section() -> None:
    doc = _doc()
    counter = default_counter()
    chunks = chunk_document(doc, counter=counter, size=60, overlap=12)
    section = [c for c in chunks if c.heading_path[-1:] == ("Checkpoints",)]
    for a, b in zip(section, section[1:], strict=False):
        assert a.span[0] < b.span[0] < a.span[1] or b.span[0] >= a.span[1]
        if b.span[0] < a.span[1]:
            shared = doc.text()[b.span[0] : a.span[1]]
            assert 0 < counter.count(shared) <= 12
            assert b.text.startswith(shared)
    overlapping = [b for a, b in zip(section, section[1:], strict=False) if b.span[0] < a.span[1]]
    assert overlapping and any(b.text.startswith(SENTENCES[4]) for b in overlapping)  # sentences
    sections = [c.heading_path for c in chunks]
    for a, b in zip(chunks, chunks[1:], strict=False):
        if a.heading_path != b.heading_path:
            assert b.span[0] > a.span[1]
    assert len(set(sections)) == 3
    no_overlap = chunk_document(doc, counter=counter, size=60, overlap=0)
    assert all(a.span[1] < b.span[0] for a, b in zip(no_overlap, no_overlap[1:], strict=False))


def test_tables_stay_whole_when_they_fit_and_split_by_rows_otherwise() -> None:
    doc = _doc()
    counter = default_counter()
    table = doc.elements[6].text
    assert counter.count(table) > 254
    split = [
        c for c in chunk_document(doc, counter=counter, size=80, overlap=10) if "Table" in c.kinds
    ]
    assert len(split) > 2
    for c in split:
        rows = [r for r in c.text.split("\n") if r.startswith("|")]
        assert rows and all(r.endswith("|") and r in table.split("\n") for r in rows)
    small = "\n".join(table.split("\n")[:8])
    doc.elements[6] = Element(
        small, "Table", page=4, heading_path=("Write-Ahead Logging", "Settings")
    )
    whole = chunk_document(doc, counter=counter, size=254, overlap=32)
    assert [c.text.count(small) for c in whole if "Table" in c.kinds] == [1]


def test_a_title_is_not_left_alone_before_a_large_element() -> None:
    body = _para(9)
    doc = LoadedDocument("x", [Element("Heading", "Title"), Element(body, heading_path=("H",))])
    counter = default_counter()
    chunks = chunk_document(doc, counter=counter, size=counter.count(body) - 5, overlap=0)
    assert chunks[0].text.startswith("Heading\n\nSQLite") and len(chunks) == 2


def test_an_over_long_word_is_never_split() -> None:
    blob = "-".join(["ab"] * 100)  # one whitespace-free run of 199 word pieces
    doc = LoadedDocument("x", [Element(f"Before the blob. {blob} After the blob.")])
    chunks = chunk_document(doc, counter=default_counter(), size=50, overlap=5)
    assert [c.text for c in chunks] == ["Before the blob.", blob, "After the blob."]
    assert [c.tokens for c in chunks] == [6, 199, 6]


def test_sizes_are_derived_from_and_validated_against_the_embedder_window() -> None:
    assert default_chunk_size(256) == 254 and default_chunk_size(8192) == 512
    assert default_overlap(254) == 32 and default_overlap(512) == 64
    validate_chunking(254, 32, window=256)
    with pytest.raises(ChunkingConfigError, match=r"at most 254"):
        validate_chunking(512, 64, window=256)
    with pytest.raises(ChunkingConfigError, match="overlap"):
        validate_chunking(100, 100, window=256)
    with pytest.raises(ChunkingConfigError):
        chunk_document(_doc(), counter=ApproxCounter(), size=10, overlap=-1)


def test_empty_and_whitespace_documents() -> None:
    counter = default_counter()
    assert chunk_document(LoadedDocument("e"), counter=counter, size=50, overlap=5) == []
    doc = LoadedDocument("w", [Element("  "), Element("word")])
    assert [c.span for c in chunk_document(doc, counter=counter, size=50, overlap=5)] == [(4, 8)]


def test_a_100kb_document_chunks_quickly() -> None:
    counter = default_counter()
    paragraphs = [_para(4, i) + f" Unique marker {i} {i * 7} tok{i}en." for i in range(380)]
    doc = LoadedDocument("big", [Element(p) for p in paragraphs])
    assert len(doc.text()) > 100_000
    chunk_document(doc, counter=counter, size=254, overlap=32)  # warms the word cache
    started = time.perf_counter()
    chunks = chunk_document(doc, counter=counter, size=254, overlap=32)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # measured ~15 ms warm, ~40 ms cold; loose for busy CI machines
    assert all(c.tokens <= 254 for c in chunks)


@pytest.mark.parametrize("counter", [ApproxCounter(), default_counter()], ids=lambda c: c.name)
def test_chunks_embedded_after_their_heading_path_leave_room_for_it(
    counter: TokenCounter,
) -> None:
    doc = _doc()
    size = 60
    chunks = chunk_document(doc, counter=counter, size=size, overlap=10, context=True)
    assert any(c.heading_path for c in chunks)
    for c in chunks:
        line = context_line(" > ".join(c.heading_path))
        embedded = f"{line}\n\n{c.text}" if line else c.text
        assert counter.count(embedded) <= size, (c.heading_path, c.tokens)
    # Without context the same document packs fuller chunks.
    assert len(chunk_document(doc, counter=counter, size=size, overlap=10)) < len(chunks)
