"""``ragent ingest DIR`` in a subprocess: links out of DIR refused, duplicates stable on re-runs."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.servers import ragent

pytestmark = pytest.mark.e2e

WAL = (
    "SQLite does a checkpoint automatically when the WAL file reaches a threshold size of "
    "1000 pages. Applications can also run checkpoints by hand. "
)


def _ingest(folder: Path, data_dir: Path) -> dict:
    result = ragent(
        "ingest", str(folder), "--json", env={"RAGENT_DATA_DIR": str(data_dir)}, cwd=folder.parent
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def _sources(data_dir: Path) -> list[str]:
    uri = f"file:{data_dir / 'index.sqlite'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        return sorted(Path(row[0]).name for row in db.execute("SELECT source FROM documents"))


def test_ingest_refuses_links_out_of_the_folder_and_keeps_its_verdicts(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash private key material " * 5)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# WAL\n\n" + WAL * 6)
    (folder / "b.md").write_text("# WAL\n\n" + WAL * 5 + WAL.replace("hand", "cron"))
    (folder / "passwd.txt").symlink_to(secret)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    data_dir = tmp_path / "data"

    first = _ingest(folder, data_dir)
    reasons = {Path(d["source"]).name: d["reason"] for d in first["dropped"]}
    assert (
        reasons["passwd.txt"] == f"symlink to {secret}, outside the ingested folders: not followed"
    )
    assert reasons["loop"].startswith("symlink to a folder already walked")
    assert "near:" in reasons["b.md"]
    assert _sources(data_dir) == ["a.md"]

    again = _ingest(folder, data_dir)
    assert (again["documents"], again["unchanged"], again["duplicates"]) == (0, 1, 1)
    assert {Path(d["source"]).name for d in again["dropped"]} == {"passwd.txt", "loop", "b.md"}
    assert _sources(data_dir) == ["a.md"]
