from __future__ import annotations

from pathlib import Path

import pytest

from app.ingest.chunking import chunk_text, stable_id
from app.ingest.loaders import LoadError, load_text
from app.ingest.pipeline import Ingestor
from app.llm.tokens import ApproxCounter, default_counter
from app.resources import Resources
from app.retrieval.types import SearchFilter

PARAGRAPH = (
    "SQLite does a checkpoint automatically when the WAL file reaches a threshold size of "
    "1000 pages. Applications can also run checkpoints by hand. "
)


def _ingestor(resources: Resources) -> Ingestor:
    return Ingestor(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=40,
        chunk_overlap=8,
        max_file_bytes=10_000,
    )


def test_chunks_respect_token_size_spans_and_words() -> None:
    counter = default_counter()
    text = "\n\n".join(PARAGRAPH * 3 for _ in range(4))
    chunks = chunk_text(text, counter=counter, size=50, overlap=10)
    assert len(chunks) > 4
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert counter.count(c.text) <= 50
        # never split inside a word: both edges fall on a word boundary
        assert c.start == 0 or not (text[c.start - 1].isalnum() and text[c.start].isalnum())
        assert c.end == len(text) or not (text[c.end - 1].isalnum() and text[c.end].isalnum())


def test_chunks_overlap_by_whole_units() -> None:
    text = " ".join(f"term{i}" for i in range(400))
    chunks = chunk_text(text, counter=default_counter(), size=60, overlap=15)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.start < b.start < a.end  # neighbours share text


def test_html_loader_drops_scripts_and_navigation(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>T</title><script>var x=1;</script></head><body>"
        "<nav>Home | About</nav><h1>WAL</h1><p>Readers do\n not block writers.</p>"
        "<footer>Copyright</footer></body></html>"
    )
    text = load_text(page, max_bytes=10_000)
    assert "Readers do not block writers." in text
    assert "var x" not in text and "Home | About" not in text and "Copyright" not in text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("a.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
        ("b.txt", b"\xff\xfe\xfa broken", "not valid UTF-8"),
        ("c.md", b"   \n\n ", "no text content"),
        ("d.txt", b"x" * 20_000, "file too large"),
    ],
)
def test_loader_errors_have_reasons(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError, match=reason):
        load_text(path, max_bytes=10_000)


def test_ingest_is_incremental_and_replaces_changed_documents(
    resources: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "wal.md").write_text("# WAL\n\n" + PARAGRAPH * 4)
    (docs / "vacuum.txt").write_text("VACUUM reclaims storage occupied by dead tuples. " * 5)
    (docs / "image.png").write_bytes(b"\x89PNG")
    ingestor = _ingestor(resources)

    first = ingestor.ingest([docs], tenant_id="t1", acl=["eng"])
    assert (first.documents, first.unchanged, first.skipped, first.failed) == (2, 0, 1, [])
    assert first.chunks == resources.writer.count(SearchFilter("t1", frozenset({"eng"})))  # type: ignore[attr-defined]
    assert resources.writer.count(SearchFilter("t1")) == 0  # type: ignore[attr-defined]

    again = ingestor.ingest([docs], tenant_id="t1", acl=["eng"])
    assert (again.documents, again.chunks, again.unchanged) == (0, 0, 2)

    (docs / "vacuum.txt").write_text("VACUUM FULL rewrites the whole table into a new file.")
    changed = ingestor.ingest([docs], tenant_id="t1", acl=["eng"])
    assert (changed.documents, changed.unchanged, changed.chunks) == (1, 1, 1)
    flt = SearchFilter("t1", frozenset({"eng"}))
    hits = resources.retriever.keywords.search("dead tuples", flt, 5)
    assert hits == []  # old chunks are gone
    assert resources.retriever.keywords.search("rewrites", flt, 5)[0].chunk.source.endswith(
        "vacuum.txt"
    )


def test_ingest_reports_failures_and_goes_on(resources: Resources, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(PARAGRAPH)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    report = _ingestor(resources).ingest([bad, good], tenant_id="t1")
    assert report.documents == 1
    assert report.failed == [{"source": str(bad), "reason": "not valid UTF-8 text"}]
    doc_id = stable_id("t1", str(bad.resolve()))
    assert resources.writer.document("t1", doc_id) is None


def test_missing_path_fails_before_any_work(resources: Resources, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(PARAGRAPH)
    with pytest.raises(FileNotFoundError):
        _ingestor(resources).ingest([good, tmp_path / "missing.md"], tenant_id="t1")
    assert resources.writer.count() == 0  # type: ignore[attr-defined]


def test_ids_are_stable_and_tenant_scoped(resources: Resources, tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text(PARAGRAPH)
    ingestor = _ingestor(resources)
    ingestor.ingest([doc], tenant_id="t1")
    ingestor.ingest([doc], tenant_id="t2")
    a = resources.retriever.keywords.search("checkpoint", SearchFilter("t1"), 5)
    b = resources.retriever.keywords.search("checkpoint", SearchFilter("t2"), 5)
    assert a and b
    assert a[0].chunk.doc_id == stable_id("t1", str(doc.resolve()))
    assert a[0].chunk.doc_id != b[0].chunk.doc_id
    assert ApproxCounter().count("abcdefgh") == 2
