"""Symbolic links met while walking folders: followed inside the given folders, refused outside."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.ingest.pipeline import IngestOptions, Ingestor
from app.ingest.scheduling import discover
from app.resources import Resources
from app.retrieval.types import SearchFilter
from tests.ingesting import small_ingestor

OPTS = IngestOptions(tenant_id="t1", workers=0, progress=False)
SECRET = "root:x:0:0:root:/root:/bin/bash the secret password file contents. " * 4
NOTES = "The release train leaves every second Thursday after the platform review. " * 4


def _ingestor(resources: Resources) -> Ingestor:
    return small_ingestor(resources)


def _sources(resources: Resources) -> set[str]:
    return {Path(r.source).name for r in resources.writer.documents("t1")}


def _indexed(resources: Resources, text: str) -> bool:
    return bool(resources.retriever.keywords.search(text, SearchFilter("t1"), 10))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A folder to ingest, and a folder outside it holding a secret."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd.txt").write_text(SECRET)
    root = tmp_path / "docs"
    root.mkdir()
    (root / "notes.md").write_text("# Notes\n\n" + NOTES)
    return root, outside


def test_a_file_link_leaving_the_folder_is_refused_and_reported(
    resources: Resources, tree: tuple[Path, Path]
) -> None:
    root, outside = tree
    (root / "passwd.txt").symlink_to(outside / "passwd.txt")
    report = _ingestor(resources).ingest([root], OPTS)
    assert report.documents == 1 and report.failed == []
    assert _sources(resources) == {"notes.md"}
    assert not _indexed(resources, "secret password")
    [dropped] = report.dropped
    assert dropped["source"] == str(root / "passwd.txt")
    assert "outside the ingested folders" in dropped["reason"]


def test_a_folder_link_leaving_the_folder_is_refused(
    resources: Resources, tree: tuple[Path, Path]
) -> None:
    root, outside = tree
    (root / "sub").mkdir()
    (root / "sub" / "etc").symlink_to(outside, target_is_directory=True)
    report = _ingestor(resources).ingest([root], OPTS)
    assert _sources(resources) == {"notes.md"} and not _indexed(resources, "secret password")
    assert [d["source"] for d in report.dropped] == [str(root / "sub" / "etc")]


def test_a_folder_link_loop_ends_and_each_file_is_read_once(
    resources: Resources, tree: tuple[Path, Path]
) -> None:
    root, _ = tree
    (root / "a").mkdir()
    (root / "a" / "deep.md").write_text("# Deep\n\n" + NOTES.replace("Thursday", "Friday"))
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "a" / "self").symlink_to(root / "a", target_is_directory=True)
    (root / "x").symlink_to(root / "y")  # x -> y -> x: a loop of file links
    (root / "y").symlink_to(root / "x")
    found = discover([root])
    assert [p.name for p, _ in found.files] == ["deep.md", "notes.md"]
    reasons = {link.path.name: link.reason for link in found.refused}
    assert reasons["loop"].startswith("symlink to a folder already walked")
    assert reasons["self"].startswith("symlink to a folder already walked")
    assert reasons["x"] == reasons["y"] == "broken symlink or symlink loop"
    report = _ingestor(resources).ingest([root], OPTS)
    assert report.documents == 2 and len(report.dropped) == 4


def test_links_inside_the_folders_are_followed_once(
    resources: Resources, tree: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = tree
    other = tmp_path / "other"
    other.mkdir()
    (other / "shared.md").write_text("# Shared\n\n" + NOTES.replace("train", "bus"))
    (root / "alias.md").symlink_to(root / "notes.md")  # the same file twice: listed once
    (root / "shared").symlink_to(other, target_is_directory=True)  # into another given root
    found = discover([root, other])
    assert [p for p, _ in found.files] == [root / "notes.md", other / "shared.md"]
    assert [link.path.name for link in found.refused] == ["alias.md", "shared"]
    report = _ingestor(resources).ingest([root, other], OPTS)
    assert report.documents == 2 and _sources(resources) == {"notes.md", "shared.md"}
    # Given alone, the same folder refuses the link that now leaves it.
    alone = discover([root])
    assert [link.path.name for link in alone.refused] == ["alias.md", "shared"]


def test_a_link_named_on_the_command_line_is_followed(
    resources: Resources, tree: tuple[Path, Path], tmp_path: Path
) -> None:
    _, outside = tree
    named = tmp_path / "named.txt"
    named.symlink_to(outside / "passwd.txt")
    report = _ingestor(resources).ingest([named], OPTS)
    assert report.documents == 1 and report.dropped == []
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(outside, target_is_directory=True)
    assert [p.name for p, _ in discover([linked_root]).files] == ["passwd.txt"]


def test_prune_removes_what_came_through_a_link_now_refused(
    resources: Resources, tree: tuple[Path, Path]
) -> None:
    root, outside = tree
    ingestor = _ingestor(resources)
    (root / "passwd.txt").symlink_to(outside / "passwd.txt")
    # An index filled by a walk that followed the link (an older version did): explicit path.
    ingestor.ingest([root / "notes.md", root / "passwd.txt"], OPTS)
    assert _indexed(resources, "secret password")
    report = ingestor.ingest([root], replace(OPTS, prune=True))
    assert report.pruned == 1 and not _indexed(resources, "secret password")
    assert _sources(resources) == {"notes.md"}
    # The target outside the folder is not in the folder's scope: ingested on its own, kept.
    ingestor.ingest([outside / "passwd.txt"], OPTS)
    assert ingestor.ingest([root], replace(OPTS, prune=True)).pruned == 0
    assert _indexed(resources, "secret password")
