"""The SQLite long-term store with one thread hop per batch (app/memory/sqlite_store.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import TTLConfig
from langgraph.store.sqlite import SqliteStore
from langgraph.store.sqlite.aio import AsyncSqliteStore

from app.memory.sqlite_store import open_sqlite_store

SCOPE = ("memories", "t", "u")


async def test_a_batch_is_one_hop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_sqlite_store(tmp_path / "m.sqlite") as store:
        batches: list[int] = []
        real = store.batch

        def counted(ops: Any) -> Any:
            batches.append(len(ops))
            return real(ops)

        monkeypatch.setattr(store, "batch", counted)
        await store.aput(SCOPE, "k", {"text": "The user's name is Ada."})
        assert [i.value for i in await store.asearch(SCOPE)] == [
            {"text": "The user's name is Ada."}
        ]
        assert (await store.aget(SCOPE, "k")) is not None
        await store.adelete(SCOPE, "k")
        assert await store.asearch(SCOPE) == []
    assert batches == [1, 1, 1, 1, 1]  # aiosqlite made a hop per statement, fetch and commit


async def test_a_database_from_langgraph_stores_is_read_and_written(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    async with AsyncSqliteStore.from_conn_string(str(path)) as before:
        await before.setup()
        await before.aput(SCOPE, "old", {"text": "kept from before"})
    async with open_sqlite_store(path) as store:
        assert (await store.aget(SCOPE, "old")).value == {"text": "kept from before"}  # type: ignore[union-attr]
        await store.aput(SCOPE, "new", {"text": "written now"})
        journal = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = store.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (journal, synchronous) == ("wal", 1)  # readers never wait on a writer
    with SqliteStore.from_conn_string(str(path)) as reader:
        assert {i.key for i in reader.search(SCOPE)} == {"old", "new"}


async def test_expired_items_are_swept_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    ttl = TTLConfig(default_ttl=1 / 600, refresh_on_read=False)  # 0.1 s
    async with open_sqlite_store(path, ttl=ttl) as store:
        await store.aput(SCOPE, "short", {"text": "soon gone"})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE store SET expires_at = datetime('now', '-1 minute')")
    conn.commit()
    conn.close()
    async with open_sqlite_store(path, ttl=ttl):
        pass
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM store").fetchone()[0] == 0


async def test_closing_finishes_queued_batches(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    async with open_sqlite_store(path) as store:
        await store.aput(SCOPE, "k", {"text": "durable"})
    with pytest.raises(sqlite3.ProgrammingError):
        store.conn.execute("SELECT 1")  # closed
    with SqliteStore.from_conn_string(str(path)) as reader:
        assert reader.get(SCOPE, "k") is not None
