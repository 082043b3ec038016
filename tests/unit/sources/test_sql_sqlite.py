"""The SQL source against a real SQLite database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock

from app.ingest.ids import stable_id
from app.resources import Resources
from app.sources.sql import SqlSource, SqlSourceError
from app.sources.sync import SyncBusyError
from tests.sources import (
    TENANT,
    articles,
    crash_scenario,
    late_commit_scenario,
    make_sync,
    scenario,
)


def test_insert_update_delete_and_acl_reach_retrieval(resources: Resources, tmp_path: Path) -> None:
    scenario(resources, f"sqlite:///{tmp_path / 'kb.sqlite'}")


def test_a_sync_killed_mid_way_is_finished_by_the_next(
    resources: Resources, tmp_path: Path
) -> None:
    crash_scenario(resources, f"sqlite:///{tmp_path / 'kb.sqlite'}")


def test_a_row_committed_late_with_an_older_updated_at_is_found(
    resources: Resources, tmp_path: Path
) -> None:
    late_commit_scenario(resources, f"sqlite:///{tmp_path / 'kb.sqlite'}")


@pytest.mark.parametrize(
    ("field", "value"),
    [("id_column", "id; DROP TABLE articles"), ("text_columns", ["body", "x y"]), ("name", "a/b")],
)
def test_names_that_are_not_identifiers_are_refused(field: str, value: object) -> None:
    config: dict[str, object] = {
        "name": "kb",
        "url": "sqlite://",
        "query": "SELECT 1",
        "id_column": "id",
        "text_columns": ["body"],
    }
    config[field] = value
    with pytest.raises(SqlSourceError):
        SqlSource(**config)  # type: ignore[arg-type]


def test_a_second_sync_of_a_source_is_refused_while_one_runs(
    resources: Resources, tmp_path: Path
) -> None:
    sync = make_sync(resources)
    source = articles(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    running = FileLock(sync.cursors.folder / f"sync-{stable_id(TENANT, 'kb')}.lock")
    with running, pytest.raises(SyncBusyError, match="'kb' is already running"):
        sync.sync(source, tenant_id=TENANT)
