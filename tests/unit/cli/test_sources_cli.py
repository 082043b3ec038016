"""``ragent sources list|sync|status`` as a user runs them, on a real SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.servers import BIN
from tests.sources import CREATE, execute


def ragent(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env["RAGENT_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [str(BIN / "ragent"), *args, "--config", str(tmp_path / "ragent.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


@pytest.fixture
def configured(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    execute(
        url,
        CREATE,
        "INSERT INTO articles VALUES (1, 'Kettles', 'descale the kettle', NULL, NULL,"
        " '2026-01-01 10:00:00')",
        "INSERT INTO articles VALUES (2, 'Payroll', 'salary bands', NULL, 'hr',"
        " '2026-01-01 11:00:00')",
    )
    (tmp_path / "ragent.yaml").write_text(
        "sources:\n"
        "  - name: kb\n"
        f"    url: {url}\n"
        "    query: SELECT * FROM articles\n"
        "    id_column: id\n"
        "    title_column: title\n"
        "    text_columns: [body]\n"
        "    acl_column: groups\n"
        "    updated_at_column: updated_at\n"
    )
    return url


def test_sync_then_status_and_list(tmp_path: Path, configured: str) -> None:
    listed = ragent(tmp_path, "sources", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)["sources"]] == ["kb"]
    synced = ragent(tmp_path, "sources", "sync", "kb")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert (report["indexed"], report["deleted"]) == (2, 0)
    assert report["cursor"] == "2026-01-01 11:00:00"
    status = ragent(tmp_path, "sources", "status", "--json")
    (row,) = json.loads(status.stdout)["sources"]
    assert row["cursor"] == "2026-01-01 11:00:00"
    assert row["last_result"]["indexed"] == 2


def test_an_unknown_source_or_a_broken_query_is_one_line(tmp_path: Path, configured: str) -> None:
    unknown = ragent(tmp_path, "sources", "sync", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "ragent: error: no source named 'nope' in 'sources' (configured: kb)"
    ]
    execute(configured, "DROP TABLE articles")
    broken = ragent(tmp_path, "sources", "sync", "kb")
    assert broken.returncode == 2
    (line,) = broken.stderr.strip().splitlines()
    assert line.startswith("ragent: error: source 'kb': OperationalError: ")
    assert "no such table: articles" in line
