"""Duplicate verdicts survive re-runs: unchanged documents still take part, without re-embedding."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ingest.factory import build_ingestor
from app.ingest.pipeline import IngestOptions, Ingestor
from app.ingest.signatures import SignatureStore
from app.resources import Resources
from app.retrieval.types import SearchFilter
from tests.ingesting import small_ingestor

OPTS = IngestOptions(tenant_id="t1", workers=0, progress=False)
ALL = SearchFilter("t1")
WAL = (
    "SQLite does a checkpoint automatically when the WAL file reaches a threshold size of "
    "1000 pages. Applications can also run checkpoints by hand. "
)
VACUUM = "VACUUM reclaims storage occupied by dead tuples in PostgreSQL tables. "
SHARED = (
    "Backups run nightly at two in the morning and are kept for thirty days in the vault. "
    "Restores are tested every quarter by the platform team on a scratch cluster. "
)


def _ingestor(resources: Resources, *, store: bool = True) -> Ingestor:
    signatures = SignatureStore(resources.settings.data_dir / "dedup.sqlite") if store else None
    return small_ingestor(resources, signatures=signatures)


def _indexed(resources: Resources) -> list[str]:
    return sorted(Path(r.source).name for r in resources.writer.documents("t1"))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("# WAL\n\n" + WAL * 6)
    (root / "b.md").write_text("# WAL\n\n" + WAL * 5 + WAL.replace("hand", "cron"))  # near
    (root / "c.md").write_text("# WAL\n\n" + WAL * 6)  # exact copy of a.md
    (root / "d.txt").write_text(VACUUM * 5)
    return root


def _check_first_run(resources: Resources, ingestor: Ingestor, docs: Path) -> None:
    first = ingestor.ingest([docs], OPTS)
    reasons = {Path(d["source"]).name: d["reason"] for d in first.dropped}
    assert set(reasons) == {"b.md", "c.md"} and "near:" in reasons["b.md"]
    assert reasons["c.md"].endswith("(exact)")
    assert _indexed(resources) == ["a.md", "d.txt"]


@pytest.mark.parametrize("store", [True, False], ids=["stored-signatures", "signed-again"])
def test_a_plain_rerun_drops_the_same_duplicates(
    resources: Resources, docs: Path, store: bool
) -> None:
    ingestor = _ingestor(resources, store=store)
    _check_first_run(resources, ingestor, docs)
    again = ingestor.ingest([docs], OPTS)
    assert _indexed(resources) == ["a.md", "d.txt"]
    assert (again.documents, again.chunks, again.unchanged, again.duplicates) == (0, 0, 2, 2)
    reasons = {Path(d["source"]).name: d["reason"] for d in again.dropped}
    assert reasons["b.md"].startswith(f"duplicate of {docs / 'a.md'} (near:")
    assert reasons["c.md"] == f"duplicate of {docs / 'a.md'} (exact)"
    assert again.failed == [] and again.timings["embed"] == 0  # nothing embedded again


def test_signatures_missing_after_an_upgrade_are_made_again(
    resources: Resources, docs: Path
) -> None:
    ingestor = _ingestor(resources)
    _check_first_run(resources, ingestor, docs)
    (resources.settings.data_dir / "dedup.sqlite").unlink()  # an index made before them
    assert ingestor.ingest([docs], OPTS).duplicates == 2
    assert _indexed(resources) == ["a.md", "d.txt"]
    (docs / "e.txt").write_text(VACUUM * 5)  # a copy of d.txt
    third = ingestor.ingest([docs], OPTS)  # signatures stored by the run before
    reasons = {Path(d["source"]).name: d["reason"] for d in third.dropped}
    assert reasons["e.txt"] == f"duplicate of {docs / 'd.txt'} (exact)"
    assert _indexed(resources) == ["a.md", "d.txt"]


def test_a_changed_document_is_still_compared_with_the_unchanged_ones(
    resources: Resources, docs: Path
) -> None:
    ingestor = build_ingestor(resources)  # as the CLI and the server build it
    ingestor.ingest([docs], OPTS)
    (docs / "d.txt").write_text("# WAL\n\n" + WAL * 6 + "The end.")  # now a copy of a.md
    changed = ingestor.ingest([docs], OPTS)
    assert "d.txt" in {Path(d["source"]).name for d in changed.dropped}
    assert _indexed(resources) == ["a.md"]  # its earlier version is not searchable either


def test_chunk_verdicts_survive_a_change_elsewhere_in_the_document(
    resources: Resources, tmp_path: Path
) -> None:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "a.md").write_text(f"# Backups\n\n{SHARED}\n\n# WAL\n\n{WAL * 3}")
    (root / "b.md").write_text(f"# Backups\n\n{SHARED}\n\n# Vacuum\n\n{VACUUM * 3}")
    ingestor = _ingestor(resources)
    first = ingestor.ingest([root], OPTS)
    assert first.documents == 2 and first.duplicates >= 1  # b.md's backup chunks
    backups = [h.chunk.source for h in resources.retriever.keywords.search("vault", ALL, 10)]
    assert [Path(s).name for s in backups] == ["a.md"]
    (root / "b.md").write_text(f"# Backups\n\n{SHARED}\n\n# Vacuum\n\n{VACUUM * 4}")
    second = ingestor.ingest([root], OPTS)
    assert (second.documents, second.unchanged) == (1, 1)
    assert second.duplicates >= 1  # the backup chunk again
    backups = [h.chunk.source for h in resources.retriever.keywords.search("vault", ALL, 10)]
    assert [Path(s).name for s in backups] == ["a.md"]
