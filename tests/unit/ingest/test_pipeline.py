"""The incremental ingestion pipeline on real embedded engines with a fast embedder."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.ingest.clean import clean_document
from app.ingest.factory import build_ingestor
from app.ingest.ids import stable_id
from app.ingest.loaders import RecordSpec, load_document
from app.ingest.pipeline import IngestOptions, Ingestor
from app.resources import Resources
from app.retrieval.embedded import changelog
from app.retrieval.types import SearchFilter
from app.settings import SettingsError
from tests.ingesting import small_ingestor

WAL = (
    "SQLite does a checkpoint automatically when the WAL file reaches a threshold size of "
    "1000 pages. Applications can also run checkpoints by hand. "
)
VACUUM = "VACUUM reclaims storage occupied by dead tuples in PostgreSQL tables. "
OPTS = IngestOptions(tenant_id="t1", acl=("eng",), workers=0, progress=False)
ENG = SearchFilter("t1", frozenset({"eng"}))


def _ingestor(resources: Resources) -> Ingestor:
    return small_ingestor(resources)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "wal.md").write_text("# WAL\n\n" + WAL * 6)
    (root / "vacuum.txt").write_text(VACUUM * 5)
    (root / "image.png").write_bytes(b"\x89PNG\r\n")
    return root


def _search(resources: Resources, text: str, flt: SearchFilter = ENG) -> list[str]:
    return [h.chunk.source for h in resources.retriever.keywords.search(text, flt, 10)]


def test_first_ingest_indexes_with_tenant_acl_and_spans(resources: Resources, docs: Path) -> None:
    report = _ingestor(resources).ingest([docs], OPTS)
    assert (report.documents, report.unchanged, report.skipped, report.failed) == (2, 0, 1, [])
    assert report.chunks == resources.writer.count(ENG)  # type: ignore[attr-defined]
    assert resources.writer.count(SearchFilter("t1")) == 0  # type: ignore[attr-defined]
    hits = resources.retriever.keywords.search("checkpoint", ENG, 10)
    assert hits and all(h.chunk.acl == ("eng",) and h.chunk.tenant_id == "t1" for h in hits)
    (loaded,) = load_document(docs / "wal.md", max_bytes=100_000)
    text = clean_document(loaded).text()  # spans index the cleaned, extracted text
    for hit in hits:
        start, end = hit.chunk.span
        assert text[start:end] == hit.chunk.text
    assert set(report.timings) == {"parse", "embed", "index"}


def test_ingest_leaves_the_keyword_index_caught_up(resources: Resources, docs: Path) -> None:
    _ingestor(resources).ingest([docs], OPTS)
    db = sqlite3.connect(resources.settings.data_dir / "index.sqlite")
    try:
        state = changelog.log_state(db)
    finally:
        db.close()
    assert state.head > 0 and state.keyword_seq == state.head  # no search has run yet


def test_reingest_of_unchanged_files_does_no_parsing(
    resources: Resources, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = _ingestor(resources)
    ingestor.ingest([docs], OPTS)

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("unchanged files must not be parsed")

    monkeypatch.setattr("app.ingest.worker.load_document", no_parsing)
    again = ingestor.ingest([docs], OPTS)
    assert (again.documents, again.chunks, again.unchanged, again.failed) == (0, 0, 2, [])


def test_changed_document_replaces_its_chunks(resources: Resources, docs: Path) -> None:
    ingestor = _ingestor(resources)
    ingestor.ingest([docs], OPTS)
    (docs / "vacuum.txt").write_text("VACUUM FULL rewrites the whole table into a new file.")
    changed = ingestor.ingest([docs], OPTS)
    assert (changed.documents, changed.unchanged) == (1, 1)
    assert _search(resources, "dead tuples") == []
    assert _search(resources, "rewrites")[0].endswith("vacuum.txt")


def test_settings_change_reindexes(resources: Resources, docs: Path) -> None:
    _ingestor(resources).ingest([docs], OPTS)
    finer = replace(_ingestor(resources), chunk_tokens=30)
    assert finer.ingest([docs], OPTS).documents == 2


def test_prune_removes_documents_whose_files_disappeared(resources: Resources, docs: Path) -> None:
    ingestor = _ingestor(resources)
    ingestor.ingest([docs], OPTS)
    (docs / "vacuum.txt").unlink()
    kept = ingestor.ingest([docs], OPTS)
    assert kept.pruned == 0 and _search(resources, "tuples")  # without --prune, nothing goes
    pruned = ingestor.ingest([docs], replace(OPTS, prune=True))
    assert pruned.pruned == 1 and pruned.unchanged == 1
    assert _search(resources, "tuples") == []
    assert _search(resources, "checkpoint")


def test_failures_are_reported_and_leave_nothing_indexed(
    resources: Resources, tmp_path: Path
) -> None:
    good = tmp_path / "good.txt"
    good.write_text(WAL)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa\x00\x01")
    fake_pdf = tmp_path / "fake.pdf"
    fake_pdf.write_text("<html>not a pdf</html>")
    report = _ingestor(resources).ingest([bad, good, fake_pdf], OPTS)
    assert report.documents == 1
    assert {f["source"] for f in report.failed} == {str(bad), str(fake_pdf)}
    assert all(f["reason"] for f in report.failed)
    for path in (bad, fake_pdf):
        assert resources.writer.document("t1", stable_id("t1", str(path.resolve()))) is None


def test_embedding_failure_writes_no_document_halfway(
    resources: Resources, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(texts: object) -> np.ndarray:
        raise RuntimeError("embedding server down")

    monkeypatch.setattr(resources.embedder, "embed_documents", broken)
    with pytest.raises(RuntimeError, match="embedding server down"):
        _ingestor(resources).ingest([docs], OPTS)
    assert resources.writer.count() == 0  # type: ignore[attr-defined]
    assert resources.writer.documents("t1") == []


def test_duplicate_and_near_empty_documents_are_dropped_with_reasons(
    resources: Resources, docs: Path
) -> None:
    (docs / "copy.md").write_text("# WAL\n\n" + WAL * 6)
    (docs / "near.md").write_text("# WAL\n\n" + WAL * 5 + WAL.replace("hand", "cron"))
    (docs / "empty.txt").write_text(" . \n")
    report = _ingestor(resources).ingest([docs], OPTS)
    reasons = {Path(d["source"]).name: d["reason"] for d in report.dropped}
    assert reasons["empty.txt"] == "near-empty"
    assert reasons["wal.md"].startswith("duplicate of") and "exact" in reasons["wal.md"]
    assert "near:" in reasons["near.md"]
    assert report.documents == 2 and report.duplicates >= 2 and report.near_empty == 1


def test_records_become_documents_with_metadata(resources: Resources, tmp_path: Path) -> None:
    export = tmp_path / "tickets.jsonl"
    rows = [
        {
            "id": "T-1",
            "title": "Checkpoint stalls",
            "body": "The WAL checkpoint stalls.",
            "team": "db",
        },
        {"id": "T-2", "title": "Vacuum slow", "body": "VACUUM FULL takes hours.", "team": "ops"},
    ]
    export.write_text("\n".join(json.dumps(r) for r in rows))
    spec = RecordSpec(text_fields=("title", "body"), id_field="id")
    ingestor = _ingestor(resources)
    report = ingestor.ingest([export], replace(OPTS, records=spec))
    assert report.documents == 2
    assert _search(resources, "stalls") == [f"{export}#T-1"]
    rows[1]["body"] = "VACUUM FULL takes minutes now."
    export.write_text("\n".join(json.dumps(r) for r in rows[1:]))
    again = ingestor.ingest([export], replace(OPTS, records=spec, prune=True))
    assert (again.documents, again.pruned) == (1, 1)
    assert _search(resources, "stalls") == [] and _search(resources, "minutes")


def test_missing_path_fails_before_any_work(resources: Resources, docs: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _ingestor(resources).ingest([docs, docs / "missing.md"], OPTS)
    assert resources.writer.count() == 0  # type: ignore[attr-defined]


def test_worker_processes_give_the_same_index(resources: Resources, docs: Path) -> None:
    for i in range(3):
        (docs / f"extra{i}.md").write_text(
            f"# Extra {i}\n\n" + VACUUM.replace("tables", f"t{i}") * 3
        )
    report = _ingestor(resources).ingest([docs], replace(OPTS, workers=2))
    assert report.documents == 5 and report.failed == []
    assert len(_search(resources, "vacuum")) >= 4


def test_chunk_size_must_fit_the_embedder(resources: Resources) -> None:
    settings = resources.settings.model_copy(deep=True)
    settings.ingest.chunk_tokens = 600  # the fake embedder reads 512
    with pytest.raises(SettingsError, match="ingest.chunk_tokens"):
        build_ingestor(replace(resources, settings=settings))
    settings.ingest.chunk_tokens = None
    default = build_ingestor(replace(resources, settings=settings))
    assert (default.chunk_tokens, default.chunk_overlap) == (510, 64)
