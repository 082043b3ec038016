"""Loaders on real samples and on small files made here (PDF by hand, DOCX with python-docx)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

import app.ingest.loaders as loaders
from app.ingest.loaders import LoadError, RecordSpec, load_document
from app.ingest.loaders._unstructured import partitioners
from app.ingest.model import Element, LoadedDocument

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
MB = 10_000_000
FURNITURE = {"Header", "Footer", "PageBreak", "PageNumber"}

Line = tuple[float, float, float, str]  # font size, x, y (from the bottom), text


def _pdf(pages: list[list[Line]], *, form: bool = False) -> bytes:
    """A minimal PDF in Helvetica on US-letter pages; ``form`` draws via a form XObject."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }

    def stream(entries: bytes, data: bytes) -> bytes:
        return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)

    kids, number = [], 4
    for lines in pages:
        ops = b"".join(
            b"BT /F1 %g Tf %g %g Td (%s) Tj ET\n" % (size, x, y, text.encode("latin-1"))
            for size, x, y, text in lines
        )
        resources = b"<< /Font << /F1 3 0 R >> >>"
        if form:
            objects[number] = stream(
                b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources " + resources, ops
            )
            ops, resources = b"/Fm1 Do\n", b"<< /XObject << /Fm1 %d 0 R >> >>" % number
            number += 1
        objects[number] = stream(b"", ops)
        objects[number + 1] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %s "
            b"/Contents %d 0 R >>" % (resources, number)
        )
        kids.append(number + 1)
        number += 2
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    out, offsets = bytearray(b"%PDF-1.4\n"), {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offsets[num] for num in sorted(objects))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


BODY = "A checkpoint copies pages from the log into the database. It runs automatically."
MANUAL = [  # page 1 and page 2, each with a running header and a page number
    [
        (9, 72, 770, "Database Manual"),
        (20, 72, 700, "Write-Ahead Logging"),
        (11, 72, 670, BODY),
        (14, 72, 630, "Checkpoints"),
        (11, 72, 600, "Applications can also run a checkpoint by hand."),
        (9, 300, 20, "1"),
    ],
    [
        (9, 72, 770, "Database Manual"),
        (14, 72, 700, "Readers"),
        (11, 72, 670, "Readers never block writers, and writers never block readers."),
        (11, 72, 650, "Concurrency"),  # short but body-sized: not a heading
        (9, 300, 20, "2"),
    ],
]


def _load(path: Path, data: bytes | str, **kwargs: object) -> list[LoadedDocument]:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return load_document(path, max_bytes=MB, **kwargs)  # type: ignore[arg-type]


def _one(path: Path, data: bytes | str) -> list[Element]:
    docs = _load(path, data)
    assert len(docs) == 1 and docs[0].source == str(path)
    assert not FURNITURE & {e.kind for e in docs[0].elements}
    return docs[0].elements


def _find(elements: list[Element], start: str) -> Element:
    return next(e for e in elements if e.text.startswith(start))


def test_public_api() -> None:
    assert set(loaders.__all__) == {
        "RECORD_SUFFIXES",
        "ExpansionLimits",
        "SUPPORTED_SUFFIXES",
        "LoadError",
        "RecordSpec",
        "load_document",
    }
    assert {".pdf", ".docx", ".html", ".md", ".txt", ".jsonl", ".csv"} <= loaders.SUPPORTED_SUFFIXES


def test_html_keeps_structure_and_drops_navigation(tmp_path: Path) -> None:
    page = """<?xml version="1.0" encoding="UTF-8"?>
    <html><head><title>Routine Vacuuming | Example Docs</title><script>var x = 1;</script>
    </head><body>
    <div class="navheader"><a href="a.html">Prev</a> <a href="b.html">Next</a></div>
    <nav><ul><li>Home</li><li>Download</li></ul></nav>
    <div role="navigation">Skip to content</div>
    <div class="toc"><dl class="toc"><dt>1. Vacuuming Basics</dt></dl></div>
    <h1>Routine Vacuuming</h1><p>VACUUM reclaims storage occupied by dead tuples.</p>
    <h2>Vacuuming Basics</h2><p>Run VACUUM regularly on busy tables.</p>
    <ul><li>Recover disk space.</li><li>Update planner statistics.</li></ul>
    <pre>VACUUM (VERBOSE, ANALYZE) mytable;</pre>
    <table><tr><th>Option</th><th>Effect</th></tr><tr><td>FULL</td><td>rewrites</td></tr></table>
    <h2>Autovacuum</h2><p>The autovacuum daemon automates this work.</p>
    <footer>Copyright 2024</footer></body></html>"""
    elements = _one(tmp_path / "vacuum.html", page)
    text = "\n".join(e.text for e in elements)
    for furniture in ("Prev", "Home", "Skip to content", "1. Vacuuming Basics", "Copyright"):
        assert furniture not in text
    assert "var x" not in text and "Example Docs" not in text
    top, basics = _find(elements, "Routine"), _find(elements, "Vacuuming Basics")
    assert (top.kind, top.heading_path) == ("Title", ())
    assert (basics.kind, basics.heading_path) == ("Title", ("Routine Vacuuming",))
    section = ("Routine Vacuuming", "Vacuuming Basics")
    assert _find(elements, "Run VACUUM").heading_path == section
    assert _find(elements, "Recover disk").kind == "ListItem"
    assert _find(elements, "VACUUM (VERBOSE").kind == "Code"
    table = _find(elements, "Option")
    assert (table.kind, table.text, table.heading_path) == (
        "Table",
        "Option\tEffect\nFULL\trewrites",
        section,
    )
    auto = _find(elements, "The autovacuum")
    assert auto.heading_path == ("Routine Vacuuming", "Autovacuum") and auto.page is None


def test_html_title_leads_heading_paths_when_no_heading_names_the_page(tmp_path: Path) -> None:
    # As the SQLite documentation: the page's name in <title> and a styled div, its <h1>s
    # numbered sections. The title leads every heading path; it never enters the text.
    page = """<html><head><title>VACUUM</title></head><body>
    <div class="fancy_title">VACUUM</div>
    <h1>1. Syntax</h1><p>The statement takes an optional schema name.</p>
    <h1>2. Description</h1><p>The VACUUM command rebuilds the database file.</p>
    <h2>2.1. VACUUM with an INTO clause</h2><p>The original database file is unchanged.</p>
    </body></html>"""
    elements = _one(tmp_path / "lang_vacuum.html", page)
    into = _find(elements, "The original")
    assert into.heading_path == ("VACUUM", "2. Description", "2.1. VACUUM with an INTO clause")
    assert _find(elements, "2. Description").heading_path == ("VACUUM",)
    assert _find(elements, "The statement").heading_path == ("VACUUM", "1. Syntax")
    assert [e.text for e in elements].count("VACUUM") == 1  # the div, not the title


@pytest.mark.parametrize(
    ("title", "h1"),
    [
        ("25.1. Routine Vacuuming", "25.1. Routine Vacuuming"),
        ("Vacuum | Docs", "Vacuum"),
        ("", "Vacuum"),
    ],
)
def test_html_title_said_by_the_first_heading_is_not_repeated(
    tmp_path: Path, title: str, h1: str
) -> None:
    page = (
        f"<html><head><title>{title}</title></head><body><h1>{h1}</h1><p>Run it.</p></body></html>"
    )
    assert _find(_one(tmp_path / "v.html", page), "Run it").heading_path == (h1,)


def test_html_in_a_declared_legacy_charset(tmp_path: Path) -> None:
    page = '<html><head><meta charset="iso-8859-1"></head>'
    page += "<body><p>Café crème brûlée.</p></body></html>"
    elements = _one(tmp_path / "menu.htm", page.encode("latin-1"))
    assert [e.text for e in elements] == ["Café crème brûlée."]


def test_markdown_sections_survive_a_code_block(tmp_path: Path) -> None:
    md = "# Guide\n\nIntro text for the guide.\n\n## Install\n\n```\npip install ragent\n```\n\n"
    md += "### From source\n\nClone the repository first.\n\n## Usage\n\nRun the command.\n"
    elements = _one(tmp_path / "guide.md", md)
    assert _find(elements, "pip install").kind == "Code"
    assert _find(elements, "Clone").heading_path == ("Guide", "Install", "From source")
    # unstructured's own parent_id loses the nesting after the code block; ours does not.
    assert _find(elements, "Usage").heading_path == ("Guide",)
    assert _find(elements, "Run the").heading_path == ("Guide", "Usage")


def test_plain_text_sample() -> None:
    [doc] = load_document(SAMPLES / "python-sorting-howto.txt", max_bytes=MB)
    assert doc.source == str(SAMPLES / "python-sorting-howto.txt")
    basics = _find(doc.elements, "Sorting Basics")
    assert basics.kind == "Title"
    assert _find(doc.elements, "A simple ascending sort").heading_path == ("Sorting Basics",)
    assert "sorted() function" in doc.text() or "sorted" in doc.text()


def test_docx_sample_and_furniture(tmp_path: Path) -> None:
    [doc] = load_document(SAMPLES / "postgresql-history.docx", max_bytes=MB)
    assert doc.elements[0].text == "A Brief History of PostgreSQL"
    item = _find(doc.elements, "The query language PostQUEL")
    assert item.kind == "ListItem" and item.heading_path == ("2.2. Postgres95",)

    import docx

    made = docx.Document()
    made.sections[0].header.paragraphs[0].text = "ACME confidential"
    made.sections[0].footer.paragraphs[0].text = "Printed copy"
    made.add_heading("Install guide", level=1)
    made.add_paragraph("Run the installer and wait until it has finished.")
    made.add_heading("Linux", level=2)
    made.add_paragraph("Use the package manager to install the server.")
    made.add_page_break()
    table = made.add_table(rows=2, cols=2)
    for r, row in enumerate([("OS", "Package"), ("Debian", "ragent.deb")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    buffer = io.BytesIO()
    made.save(buffer)
    elements = _one(tmp_path / "guide.docx", buffer.getvalue())
    text = "\n".join(e.text for e in elements)
    assert "ACME" not in text and "Printed copy" not in text
    assert _find(elements, "Use the package").heading_path == ("Install guide", "Linux")
    assert _find(elements, "OS").text == "OS\tPackage\nDebian\tragent.deb"


def test_pdf_sample() -> None:
    [doc] = load_document(SAMPLES / "sqlite-copyright-release.pdf", max_bytes=MB)
    title = doc.elements[0]
    assert (title.kind, title.text, title.page) == (
        "Title",
        "Copyright Release for Contributions To SQLite",
        1,
    )
    body = _find(doc.elements, "SQLite is software")
    assert body.page == 1 and body.heading_path == (title.text,)
    assert len(doc.text()) > 3000


def test_pdf_pages_headings_and_running_furniture(tmp_path: Path) -> None:
    elements = _one(tmp_path / "manual.pdf", _pdf(MANUAL))
    assert [(e.kind, e.text, e.page, e.heading_path) for e in elements[:3]] == [
        ("Title", "Write-Ahead Logging", 1, ()),
        ("NarrativeText", BODY, 1, ("Write-Ahead Logging",)),
        ("Title", "Checkpoints", 1, ("Write-Ahead Logging",)),
    ]
    readers = _find(elements, "Readers never")
    assert readers.page == 2 and readers.heading_path == ("Write-Ahead Logging", "Readers")
    assert _find(elements, "Concurrency").kind != "Title"
    texts = {e.text for e in elements}
    assert "Database Manual" not in texts and not texts & {"1", "2"}


def test_pdf_text_in_a_form_xobject_falls_back_to_pypdf(tmp_path: Path) -> None:
    elements = _one(tmp_path / "form.pdf", _pdf(MANUAL, form=True))
    assert {e.page for e in elements} == {1, 2}
    assert any("Readers never block writers" in e.text and e.page == 2 for e in elements)


def _encrypted(user: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(_pdf(MANUAL)))
    writer.encrypt(user_password=user, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("secret.pdf", _encrypted("secret"), "encrypted PDF"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage", "corrupt PDF"),
        ("blank.pdf", _pdf([[]]), "no text content"),
        ("page.pdf", b"<html><body><p>Not a PDF at all.</p></body></html>", "not a PDF file"),
        ("notes.docx", b"Plain text, not a Word file.", "not a DOCX file"),
        ("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "encrypted or legacy"),
        ("bad.docx", b"PK\x03\x04 truncated", "corrupt DOCX"),
        ("binary.txt", b"%PDF-1.4\x00\x01\x02", "binary content"),
        ("latin.md", "Caf\xe9".encode("latin-1"), "not valid UTF-8"),
        ("empty.html", b"<html><body> </body></html>", "no text content"),
        ("image.png", b"\x89PNG\r\n", "unsupported file type '.png'"),
    ],
)
def test_bad_files_fail_with_a_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        _load(tmp_path / name, data)


def test_owner_password_only_pdf_is_read(tmp_path: Path) -> None:
    assert _find(_one(tmp_path / "locked.pdf", _encrypted("")), "Readers never").page == 2


def test_too_large_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    path.write_bytes(b"garbage that is no PDF" * 100)
    with pytest.raises(LoadError, match=r"file too large \(2200 bytes > 2000\)"):
        load_document(path, max_bytes=2000)


TICKETS = [
    {"id": "T-1", "title": "Checkpoint stalls", "body": "The WAL checkpoint stalls.", "n": 3},
    {"id": "T-2", "title": "Vacuum slow", "body": None, "tags": ["db", "ops"], "ok": True},
    {"id": "T-3", "title": "", "body": ""},
]


def test_jsonl_records(tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    lines = "\n".join(json.dumps(r) for r in TICKETS)
    docs = _load(path, lines, records=RecordSpec(("title", "body"), id_field="id"))
    assert [d.source for d in docs] == [f"{path}#T-1", f"{path}#T-2"]  # T-3 has no text
    assert docs[0].text() == "title: Checkpoint stalls\nbody: The WAL checkpoint stalls."
    assert docs[0].elements[0].kind == "Record"
    assert docs[0].metadata == {"id": "T-1", "n": "3"}
    assert docs[1].metadata == {"id": "T-2", "tags": '["db", "ops"]', "ok": "true"}
    docs = _load(path, "\n\n" + lines, records=RecordSpec(("title",), metadata_fields=("n",)))
    assert [(d.source, d.text(), d.metadata) for d in docs] == [
        (f"{path}#3", "Checkpoint stalls", {"n": "3"}),
        (f"{path}#4", "Vacuum slow", {}),
    ]


@pytest.mark.parametrize(
    ("content", "spec", "reason"),
    [
        ('{"id": 1, "t": "a"}\n{"id": 1, "t": "b"}', RecordSpec(("t",), "id"), "line 2: duplicate"),
        ('{"t": "a"}\n{"t": "b"', RecordSpec(("t",)), "line 2: invalid JSON"),
        ('["t", "a"]', RecordSpec(("t",)), "line 1: not a JSON object"),
        ('{"t": "a"}', RecordSpec(("t",), "id"), "line 1: no value for the id field 'id'"),
        ('{"t": "a"}', RecordSpec(("body",)), r"no text content \(no record has body\)"),
        ('{"t": "a"}', None, "needs a record spec"),
    ],
)
def test_bad_jsonl(tmp_path: Path, content: str, spec: RecordSpec | None, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        _load(tmp_path / "x.jsonl", content, records=spec)


def test_csv_records(tmp_path: Path) -> None:
    long_text = "word " * 40_000  # over csv's default 128 KiB field limit
    content = (
        f'id,title,body,team\r\n7,Stall,"Line one\nline two",db\r\n\r\n8,Big,{long_text},ops\r\n'
    )
    path = tmp_path / "export.csv"
    docs = _load(path, content, records=RecordSpec(("body",)))
    assert [d.source for d in docs] == [f"{path}#2", f"{path}#5"]
    assert docs[0].text() == "Line one\nline two"
    assert docs[0].metadata == {"id": "7", "title": "Stall", "team": "db"}
    assert len(docs[1].text()) == len(long_text.strip())
    with pytest.raises(LoadError, match="CSV has no column named 'summary'"):
        _load(path, content, records=RecordSpec(("summary",)))
    with pytest.raises(LoadError, match="line 2: 3 fields, the header has 2"):
        _load(path, "id,body\n1,a,b\n", records=RecordSpec(("body",)))


# Runs in a fresh interpreter: records every network, URL and subprocess event while the
# loaders import unstructured and parse one file of each format.
_OFFLINE_PROBE = """
import json, sys
events = []
def hook(event, args):
    if event in {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                 "urllib.Request", "subprocess.Popen"}:
        events.append(f"{event} {args!r}"[:200])
sys.addaudithook(hook)
from pathlib import Path
from app.ingest.loaders import load_document
kinds = {}
for name in sys.argv[1:]:
    docs = load_document(Path(name), max_bytes=10**8)
    kinds[Path(name).suffix] = len(docs[0].elements)
from unstructured.nlp import tokenize
print(json.dumps({"events": events, "kinds": kinds, "nlp": type(tokenize._get_nlp()).__name__,
                  "model": any(m.startswith("en_core_web") for m in sys.modules)}))
"""


def test_loading_every_format_makes_no_network_access(tmp_path: Path) -> None:
    """A fresh process (imports, telemetry and model loading happen once): no network at all."""
    pdf, md = tmp_path / "manual.pdf", tmp_path / "guide.md"
    pdf.write_bytes(_pdf(MANUAL))
    md.write_text("# Guide\n\nRead the manual before you start.\n")
    files = [SAMPLES / "sqlite-wal.html", SAMPLES / "postgresql-history.docx"]
    files += [SAMPLES / "python-sorting-howto.txt", md, pdf]
    env = {k: v for k, v in os.environ.items() if k not in {"DO_NOT_TRACK", "SCARF_NO_ANALYTICS"}}
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_PROBE, *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=240,
        check=True,
    )
    report = json.loads(done.stdout)  # nothing else on stdout: unstructured's banner is off
    assert report["events"] == []
    assert set(report["kinds"]) == {".html", ".docx", ".txt", ".md", ".pdf"}
    assert report["nlp"] == "RuleBasedNLP" and report["model"] is False


def test_unstructured_classifies_text_with_the_rule_based_nlp() -> None:
    partitioners()
    from unstructured.nlp import tokenize

    text = 'He said "stop." Then (after a pause) it ran! Did it? Yes'
    assert tokenize.sent_tokenize(text) == [
        'He said "stop."',
        "Then (after a pause) it ran!",
        "Did it?",
        "Yes",
    ]
    assert tokenize.word_tokenize("WAL isn't slow.") == ["WAL", "isn", "'", "t", "slow", "."]
    assert tokenize.pos_tag("Readers run.") == [("Readers", ""), ("run", ""), (".", "")]
