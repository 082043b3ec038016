"""The SQLite long-term store, with one thread hop per batch of operations.

LangGraph's ``AsyncSqliteStore`` runs on aiosqlite, which sends every statement, fetch,
commit and cursor close to its thread on its own: a memory recall took about four hops.
This store is LangGraph's synchronous ``SqliteStore``, whose ``abatch`` runs the whole
batch on one dedicated thread: one hop. One thread keeps the operations in order, as
aiosqlite's does, and the event loop never blocks on SQLite. The database uses WAL with
``synchronous=NORMAL``, as the other embedded stores do: a reader never waits on a writer
(another worker, or ``ragent memory`` in another process).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.store.base import Op, Result, TTLConfig
from langgraph.store.sqlite import SqliteStore

__all__ = ["ThreadedSqliteStore", "open_sqlite_store"]


class ThreadedSqliteStore(SqliteStore):
    """``SqliteStore`` whose async batches run whole on the store's own thread."""

    def __init__(self, conn: sqlite3.Connection, *, ttl: TTLConfig | None = None) -> None:
        """Use ``conn`` (opened with ``check_same_thread=False``) from one worker thread."""
        super().__init__(conn, ttl=ttl)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ragent-memory")

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in one hop to the store's thread (see ``SqliteStore.batch``)."""
        todo = list(ops)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self.batch, todo)

    def close(self) -> None:
        """Finish the queued batches, then close the connection."""
        self._thread.shutdown(wait=True)
        self.conn.close()


def _connect(path: Path, ttl: TTLConfig | None) -> ThreadedSqliteStore:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit, as SqliteStore expects (it opens its own transactions). A writer waits
    # up to 5 s for another process's lock, as aiosqlite's connection did.
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    store = ThreadedSqliteStore(conn, ttl=ttl)
    store.setup()
    if ttl is not None:
        store.sweep_ttl()
    return store


@asynccontextmanager
async def open_sqlite_store(
    path: Path, *, ttl: TTLConfig | None = None
) -> AsyncIterator[ThreadedSqliteStore]:
    """Open (creating it if needed) the store's database at ``path`` for the block.

    Opening (with a sweep of expired items when ``ttl`` is set) and closing run off the
    event loop.
    """
    store = await asyncio.to_thread(_connect, path, ttl)
    try:
        yield store
    finally:
        await asyncio.to_thread(store.close)
