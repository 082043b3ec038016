"""``ragent ingest`` of hostile files: each fails alone with a one-line reason, nothing indexed."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests import hostile_files as hostile
from tests.servers import ragent

pytestmark = pytest.mark.e2e

ROTA = "# Rota\n\nThe on-call rota for the billing service changes every Monday at noon.\n"


def _sources(data_dir: Path) -> list[str]:
    uri = f"file:{data_dir / 'index.sqlite'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        return sorted(Path(row[0]).name for row in db.execute("SELECT source FROM documents"))


def test_ingest_refuses_each_bomb_with_its_reason_and_indexes_the_rest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rota.md").write_text(ROTA)
    (docs / "report.docx").write_bytes(hostile.docx_bomb())
    (docs / "laughs.docx").write_bytes(hostile.docx_billion_laughs())
    (docs / "xxe.docx").write_bytes(hostile.docx_external_entity())
    (docs / "scan.pdf").write_bytes(hostile.pdf_bomb())
    (docs / "deep.html").write_bytes(hostile.deep_html())
    (docs / "deep.md").write_bytes(hostile.deep_markdown_list(600))
    (docs / "hidden.pdf").write_bytes(hostile.pdf_hidden_bomb(1500 << 20))
    data_dir = tmp_path / "data"
    env = {"RAGENT_DATA_DIR": str(data_dir), "RAGENT_INGEST_PARSE_MEMORY_BYTES": "1000000000"}

    result = ragent("ingest", str(docs), "--json", env=env, cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    reasons = {Path(f["source"]).name: f["reason"] for f in report["failed"]}
    assert reasons["report.docx"].startswith("decompression bomb: a part inflates")
    assert reasons["laughs.docx"].startswith("an XML part declares a DTD")
    assert reasons["xxe.docx"].startswith("an XML part declares a DTD")
    assert reasons["scan.pdf"].startswith("decompression bomb: its streams inflate")
    assert reasons["deep.html"] == "HTML elements nested more than 255 deep (ingest.max_nesting)"
    assert reasons["deep.md"].startswith("line 258 is nested 257 levels deep")
    # Invisible to the checks, stopped by the parser process's memory cap.
    assert reasons["hidden.pdf"] == "exceeded the parse memory limit (ingest.parse_memory_bytes)"
    assert report["documents"] == 1 and _sources(data_dir) == ["rota.md"]

    plain = ragent("ingest", str(docs / "report.docx"), env=env, cwd=tmp_path)
    assert plain.returncode == 1
    [line] = [x for x in plain.stderr.splitlines() if x.startswith("  failed:")]
    assert line.startswith(f"  failed: {docs / 'report.docx'}: decompression bomb: ")
