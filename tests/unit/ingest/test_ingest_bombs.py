"""Hostile files are refused before they are parsed, and parsing runs in capped processes."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest

from app.ingest.loaders import ExpansionLimits, LoadError, RecordSpec, load_document
from app.ingest.pipeline import IngestOptions
from app.ingest.sandbox import ParseSandbox, SandboxLimits
from app.ingest.worker import OUT_OF_MEMORY, ParseJob
from app.resources import Resources
from tests import hostile_files as hostile
from tests.ingesting import small_ingestor

MAX_BYTES = 50_000_000
DEFAULT = ExpansionLimits()
LOW = ExpansionLimits(max_expanded_bytes=2_000_000)


def _load(tmp_path: Path, name: str, data: bytes, limits: ExpansionLimits = DEFAULT):
    path = tmp_path / name
    path.write_bytes(data)
    return load_document(path, max_bytes=MAX_BYTES, limits=limits)


def _refused(tmp_path: Path, name: str, data: bytes, limits: ExpansionLimits = DEFAULT):
    with pytest.raises(LoadError) as caught:
        _load(tmp_path, name, data, limits)
    return str(caught.value)


def test_a_docx_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    bomb = hostile.docx_bomb(100_000_000)  # like the one in the issue: 460 KB to 100 MB
    assert len(bomb) < 600_000
    reason = _refused(tmp_path, "report.docx", bomb)
    assert reason.startswith("decompression bomb: a part inflates")
    assert "ingest.max_expansion_ratio=100" in reason


def test_a_docx_larger_than_the_expansion_limit_once_inflated_is_refused(tmp_path: Path) -> None:
    # Not very compressible (so no ratio alarm), but larger than the limit once inflated.
    text = " ".join(f"w{i}" for i in range(600_000))
    reason = _refused(tmp_path, "big.docx", hostile.docx_text(text), LOW)
    assert reason == (
        "decompression bomb: its parts inflate to more than 2000000 bytes "
        "(ingest.max_expanded_bytes=2000000)"
    )


def test_a_zip_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(hostile.docx_text("fine"))) as src:
        with zipfile.ZipFile(out, "w") as dst:
            for entry in src.infolist():
                dst.writestr(entry, src.read(entry))
            for i in range(20):
                dst.writestr(f"customXml/item{i}.bin", b"")
    limits = ExpansionLimits(max_entries=10)
    reason = _refused(tmp_path, "many.docx", out.getvalue(), limits)
    assert reason.startswith("archive has ") and "(more than 10)" in reason


def test_a_zip_entry_larger_than_it_declares_is_refused(tmp_path: Path) -> None:
    # The checks add up declared sizes: an entry that inflates past its declared size must
    # not get by (the zip reader stops there, and the CRC then fails).
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(hostile.docx_text("fine"))) as src:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for entry in src.infolist():
                if entry.filename != "word/document.xml":
                    dst.writestr(entry, src.read(entry))
            dst.writestr("word/document.xml", b"<w:document>" + b"a" * 3_000_000)
    data = bytearray(out.getvalue())
    name = b"word/document.xml"
    central = data.index(name, data.index(b"PK\x01\x02")) - 46
    assert data[central : central + 4] == b"PK\x01\x02"
    data[central + 24 : central + 28] = struct.pack("<I", 1000)
    reason = _refused(tmp_path, "lying.docx", bytes(data))
    assert reason == "corrupt archive: BadZipFile: Bad CRC-32 for file 'word/document.xml'"


@pytest.mark.parametrize("make", [hostile.docx_billion_laughs, hostile.docx_external_entity])
def test_xml_entity_declarations_in_a_docx_are_refused(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    reason = _refused(tmp_path, "laughs.docx", make())
    assert reason == (
        "an XML part declares a DTD (entity declarations are refused: "
        "entity expansion and external entities)"
    )


def test_a_pdf_flatedecode_bomb_is_refused_without_holding_its_output(tmp_path: Path) -> None:
    bomb = hostile.pdf_bomb(150_000_000)
    assert len(bomb) < 400_000
    reason = _refused(tmp_path, "bomb.pdf", bomb)
    assert reason == (
        "decompression bomb: its streams inflate to more than 100000000 bytes "
        "(ingest.max_expanded_bytes=100000000)"
    )
    small = _refused(tmp_path, "small.pdf", hostile.pdf_bomb(5_000_000), LOW)
    assert small.startswith("decompression bomb: its streams inflate to more than 2000000")


def test_deeply_nested_html_is_refused_not_silently_emptied(tmp_path: Path) -> None:
    # libxml2 builds 255 levels and drops the rest: the text inside would vanish unseen.
    reason = _refused(tmp_path, "deep.html", hostile.deep_html(100_000))
    assert reason == "HTML elements nested more than 255 deep (ingest.max_nesting)"
    shallow = ExpansionLimits(max_nesting=40)
    reason = _refused(tmp_path, "deep50.html", hostile.deep_html(50), shallow)
    assert reason == "HTML elements nested more than 40 deep (ingest.max_nesting)"


def test_deeply_nested_markdown_is_refused(tmp_path: Path) -> None:
    # Python-Markdown recurses per level: 3000 levels took minutes and gigabytes.
    reason = _refused(tmp_path, "deep.md", hostile.deep_markdown_list(600))
    assert reason == "line 258 is nested 257 levels deep (more than ingest.max_nesting=256)"
    quoted = _refused(tmp_path, "quote.md", hostile.deep_markdown_quote(100_000))
    assert quoted.startswith("line 1 is nested 100000 levels deep")


def test_deeply_nested_jsonl_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    with pytest.raises(LoadError, match=r"^line 2: JSON nested too deep$"):
        load_document(path, max_bytes=MAX_BYTES, records=RecordSpec(text_fields=("text",)))


def test_ordinary_files_pass_the_checks(tmp_path: Path) -> None:
    [docx] = _load(tmp_path, "ok.docx", hostile.docx_text("The rota changes on Mondays."))
    assert docx.text() == "The rota changes on Mondays."
    [pdf] = _load(tmp_path, "ok.pdf", hostile.pdf_text("The rota changes on Mondays."))
    assert pdf.text() == "The rota changes on Mondays."
    nested = b"<html><body>" + b"<div>" * 60 + b"<p>Deep but fine.</p>" + b"</div>" * 60
    [html] = _load(tmp_path, "ok.html", nested + b"</body></html>")
    assert html.text() == "Deep but fine."
    listed = b"".join(b"  " * level + b"- level %d\n" % level for level in range(8))
    [md] = _load(tmp_path, "ok.md", listed)
    assert "level 7" in md.text()


def _job(tmp_path: Path, name: str, data: bytes) -> ParseJob:
    path = tmp_path / name
    path.write_bytes(data)
    return ParseJob(path, "hash", MAX_BYTES)


def test_a_parse_past_the_memory_cap_fails_alone_in_its_process(tmp_path: Path) -> None:
    # Under ASCIIHexDecode the bomb is invisible to the checks: only the parse finds it,
    # and the child's RLIMIT_AS stops it (1.5 GB of output in a 1 GB address space).
    hidden = _job(tmp_path, "hidden.pdf", hostile.pdf_hidden_bomb(1500 << 20))
    fine = _job(tmp_path, "fine.md", b"# Rota\n\nThe rota changes on Mondays.\n")
    with ParseSandbox(SandboxLimits(memory_bytes=1_000_000_000, timeout_s=120)) as sandbox:
        first, second = sandbox.parse([hidden, fine])
    assert first.error == OUT_OF_MEMORY and not first.documents
    assert second.error is None and "Mondays" in second.documents[0].text()


def test_a_parse_past_its_deadline_is_killed(tmp_path: Path) -> None:
    # A fresh parser process imports its parsers (over a second) before the first file.
    slow = _job(tmp_path, "slow.md", b"# Rota\n\n" + b"The rota changes on Mondays.\n\n" * 20_000)
    with ParseSandbox(SandboxLimits(timeout_s=0.5)) as sandbox:
        [result] = sandbox.parse([slow])
    assert (
        result.error
        == "took longer than 0.5 s to parse (ingest.parse_timeout_s); the parser was stopped"
    )
    assert 0.5 <= result.seconds < 5


def test_a_parser_process_killed_from_outside_fails_its_file_alone(tmp_path: Path) -> None:
    # What the kernel's OOM killer does: SIGKILL in the middle of a parse.
    slow = _job(tmp_path, "slow.md", b"# Rota\n\n" + b"The rota changes on Mondays.\n\n" * 20_000)
    fine = _job(tmp_path, "fine.md", b"# Rota\n\nThe rota changes on Mondays.\n")

    def kill_the_parser() -> None:
        while not (children := multiprocessing.active_children()):
            time.sleep(0.05)
        time.sleep(0.3)
        for child in children:
            if child.name == "ragent-parser" and child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_parser)
    killer.start()
    with ParseSandbox(SandboxLimits(timeout_s=120)) as sandbox:
        first, second = sandbox.parse([slow, fine])
    killer.join()
    assert first.error == (
        "the parser process died (SIGKILL): the file needs more memory than "
        "ingest.parse_memory_bytes=3000000000 or crashes the parser"
    )
    assert second.error is None and "Mondays" in second.documents[0].text()


def test_a_run_left_early_leaves_no_result_for_the_next(tmp_path: Path) -> None:
    # A server keeps its parser process between jobs: what a failed job had in flight must
    # not come back as the next job's result.
    first = _job(tmp_path, "first.md", b"# One\n\nThe first memo is about lunch.\n")
    slow = _job(tmp_path, "slow.md", b"# Two\n\n" + b"The second memo is long.\n\n" * 20_000)
    third = _job(tmp_path, "third.md", b"# Three\n\nThe third memo is about parking.\n")
    fourth = _job(tmp_path, "fourth.md", b"# Four\n\nThe fourth memo is about holidays.\n")
    with ParseSandbox(SandboxLimits(timeout_s=120), workers=2) as sandbox:
        run = sandbox.parse([first, slow])
        assert "lunch" in next(run).documents[0].text()  # "slow" is in the other process
        run.close()
        parsers = [c for c in multiprocessing.active_children() if c.name == "ragent-parser"]
        assert len(parsers) == 1  # the one that was parsing "slow" is gone
        results = list(sandbox.parse([third, fourth]))
    assert [r.job for r in results] == [third, fourth]
    assert "holidays" in results[1].documents[0].text()


def test_the_pipeline_indexes_nothing_of_a_hostile_file(
    tmp_path: Path, resources: Resources
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rota.md").write_text("# Rota\n\nThe on-call rota changes every Monday at noon.\n")
    (docs / "bomb.docx").write_bytes(hostile.docx_bomb())
    (docs / "laughs.docx").write_bytes(hostile.docx_billion_laughs())
    (docs / "bomb.pdf").write_bytes(hostile.pdf_bomb())
    (docs / "deep.html").write_bytes(hostile.deep_html())
    ingestor = small_ingestor(resources, sandbox=SandboxLimits())
    report = ingestor.ingest([docs], IngestOptions(tenant_id="t1", workers=2, progress=False))
    failed = {Path(f["source"]).name: f["reason"] for f in report.failed}
    assert set(failed) == {"bomb.docx", "laughs.docx", "bomb.pdf", "deep.html"}
    assert all(reason.split(":")[0] for reason in failed.values())
    assert report.documents == 1
    assert [Path(r.source).name for r in resources.writer.documents("t1")] == ["rota.md"]
