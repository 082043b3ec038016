"""The SQL source against a real PostgreSQL cluster started by the test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.resources import Resources
from tests.postgres import pg_bin, postgres_server
from tests.sources import crash_scenario, late_commit_scenario, scenario

pytestmark = [
    pytest.mark.integration,
    # CI installs it (scripts/test.sh): there, a missing server fails instead of skipping.
    pytest.mark.skipif(
        pg_bin() is None and not os.environ.get("CI"), reason="PostgreSQL is not installed"
    ),
]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def database(postgres: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"db_{request.node.name.split('[')[0][-40:]}".lower()
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield postgres.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_insert_update_delete_and_acl_reach_retrieval(resources: Resources, database: str) -> None:
    scenario(resources, database)


def test_a_sync_killed_mid_way_is_finished_by_the_next(resources: Resources, database: str) -> None:
    crash_scenario(resources, database)


def test_a_row_committed_late_with_an_older_updated_at_is_found(
    resources: Resources, database: str
) -> None:
    late_commit_scenario(resources, database)
