"""``kill -9`` of ``ragent sources sync`` mid-way through a PostgreSQL table, then a rerun.

The killed process leaves whole documents only (every record's chunks all there, in
SQLite and in the keyword index alike, and no chunk without its record), its lock free
(the lock file at once; the Redis lock when its TTL lapses), its cursor unmoved, and a
status that says the sync was interrupted; the next ``ragent sources sync`` indexes
every row once and reports ok.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest
import redis

from app.ingest.ids import stable_id
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.types import SearchFilter
from app.sources.cursors import RedisCursorStore
from app.sources.locks import FileSourceLock
from tests.postgres import pg_bin, postgres_server
from tests.servers import BIN, ragent, redis_server
from tests.sources import CREATE, execute

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),  # two syncs through the local embedding model
    pytest.mark.skipif(
        pg_bin() is None and not os.environ.get("CI"), reason="PostgreSQL is not installed"
    ),
]

TENANT = "default"
ROWS = 200
DIM = 384  # all-MiniLM-L6-v2, the default local embedder


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _documents(index: Path) -> dict[str, list[str]]:
    """doc_id -> its record's chunk ids, for the source's documents."""
    with closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT doc_id, chunk_ids FROM documents WHERE source LIKE 'source:kb/%'"
        ).fetchall()
    return {doc: json.loads(ids) for doc, ids in rows}


def _indexed(index: Path) -> int:
    if not index.exists():
        return 0
    try:
        return len(_documents(index))
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def _check_whole(data: Path) -> dict[str, list[str]]:
    """Every record's chunks are all there, in SQLite and tantivy; no chunk lacks a record."""
    records = _documents(data / "index.sqlite")
    with closing(sqlite3.connect(data / "index.sqlite")) as db:
        chunks: dict[str, set[str]] = {}
        for doc, chunk in db.execute("SELECT doc_id, chunk_id FROM chunks"):
            chunks.setdefault(doc, set()).add(chunk)
    assert set(chunks) == set(records), "chunks without a record, or a record without chunks"
    for doc, ids in records.items():
        assert ids and set(ids) == chunks[doc], doc
    index = EmbeddedIndex(data / "index.sqlite", dim=DIM)
    try:
        index.flush()
        hits = index.keyword_search("shared", SearchFilter(TENANT, frozenset()), 10 * ROWS)
    finally:
        index.close()
    assert {h.chunk.chunk_id for h in hits} == {c for ids in records.values() for c in ids}
    return records


def _state(env: dict[str, str], cwd: Path) -> dict[str, object]:
    status = ragent("sources", "status", "--json", env=env, cwd=cwd)
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)["sources"]
    assert isinstance(row, dict)
    return row


@pytest.mark.parametrize("backend", ["files", "redis"])
def test_a_killed_sync_leaves_whole_documents_a_free_lock_and_the_next_run_finishes(
    database: str, tmp_path: Path, backend: str
) -> None:
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()).url if backend == "redis" else None
        _kill_and_rerun(database, tmp_path, redis_url)


def _kill_and_rerun(database: str, tmp_path: Path, redis_url: str | None) -> None:
    rows = ", ".join(
        f"({n}, 'Note {n}', 'entry number{n} shared ' || repeat('word{n} ', 20), NULL, NULL,"
        f" TIMESTAMP '2026-03-01 00:00:00' + interval '{n} seconds')"
        for n in range(1, ROWS + 1)
    )
    execute(database, CREATE, f"INSERT INTO articles VALUES {rows}")
    data = tmp_path / "data"
    source = {
        "name": "kb",
        "url": database,
        "query": "SELECT id, title, body, updated_at FROM articles",
        "id_column": "id",
        "title_column": "title",
        "text_columns": ["body"],
        "updated_at_column": "updated_at",
    }
    # Small embedding batches: many commits, so the kill falls between two of them.
    env = {
        "RAGENT_DATA_DIR": str(data),
        "RAGENT_SOURCES": json.dumps([source]),
        "RAGENT_INGEST_EMBED_BATCH": "16",
    }
    if redis_url:
        env["RAGENT_SERVER_REDIS_URL"] = redis_url
    with (tmp_path / "sync.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "ragent"), "sources", "sync", "kb"],
            env={**os.environ, **env},
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while _indexed(data / "index.sqlite") < ROWS // 10:
            assert proc.poll() is None, (tmp_path / "sync.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the sync did not get under way"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)

    records = _check_whole(data)
    assert 0 < len(records) < ROWS, "the kill came after the sync had finished"
    lock = FileSourceLock(data / f"sync-{stable_id(TENANT, 'kb')}.lock")
    assert not lock.held()
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        key = f"ragent:source-sync:{stable_id(TENANT, 'kb')}"
        assert 0 < client.pttl(key) <= 60_000  # the dead holder's lock lapses by its TTL
        assert _state(env, tmp_path)["state"] == "running"  # as far as anyone can tell
        assert RedisCursorStore(client).get(TENANT, "kb") is None  # no finished sync yet
        deadline = time.monotonic() + 65
        while client.exists(key):
            assert time.monotonic() < deadline, "the lock did not lapse"
            time.sleep(0.5)
    row = _state(env, tmp_path)
    assert row["state"] == "interrupted", row  # not "running": nothing runs it
    assert row["cursor"] is None, row

    again = ragent("sources", "sync", "kb", env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["indexed"] + report["unchanged"] == ROWS, report
    assert report["unchanged"] >= len(records)  # what the killed run wrote is kept
    finished = _check_whole(data)
    assert set(finished) == {stable_id(TENANT, f"source:kb/{n}") for n in range(1, ROWS + 1)}
    row = _state(env, tmp_path)
    result = row["last_result"]
    assert row["state"] == "ok" and isinstance(result, dict) and result["error"] is None, row
    assert row["cursor"] == "2026-03-01T00:03:20", row  # the last row's updated_at
    assert not lock.held()
