"""Duplicate-detection signatures of indexed documents and chunks, kept between runs.

An unchanged file is skipped before it is parsed, so its text is not at hand in a later
run. Without its signature, a near-copy that an earlier run dropped as its duplicate would
be compared with nothing and indexed on a plain re-run. The pipeline therefore keeps the
signature (:class:`~app.ingest.dedup.Signature`) of every document and chunk it indexes,
and seeds the run's duplicate filters with those of the documents it skips as unchanged:
the verdicts of a run do not depend on which files happened to change.

The signatures live in ``<data_dir>/dedup.sqlite`` (about 0.6 KB a chunk), next to the
index they describe, or in Redis shared by every worker (:mod:`app.ingest.redis_signatures`,
``ingest.state_backend: redis``); a document whose signature is missing is simply not
compared again. A signature is
only used while it belongs to the document's current content hash and the filter's scheme.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from app.ingest.dedup import Signature

__all__ = ["SignatureStore", "SignatureTable", "Signatures", "SignatureSource", "Signed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signatures (
    tenant TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    scheme TEXT NOT NULL,
    digest BLOB NOT NULL,
    minhash BLOB,
    PRIMARY KEY (tenant, doc_id, item_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Signed:
    """A stored signature: of the document itself (``item_id == doc_id``) or of a chunk."""

    item_id: str
    signature: Signature


class Signatures(Protocol):
    """An open signature store, used by one thread for one run."""

    def put(
        self, tenant: str, doc_id: str, content_hash: str, scheme: str, items: Sequence[Signed]
    ) -> None:
        """Replace the signatures of one document (its own and its chunks')."""
        ...

    def get(self, tenant: str, doc_id: str, content_hash: str, scheme: str) -> list[Signed]:
        """The signatures of a document at ``content_hash``, document first; [] if none."""
        ...

    def delete(self, tenant: str, doc_ids: Iterable[str]) -> None:
        """Forget the signatures of documents that left the index."""
        ...


class SignatureSource(Protocol):
    """Where signatures are kept: opened once per ingest run."""

    def open(self) -> AbstractContextManager[Signatures]:
        """Open the store for one run."""
        ...


def _values(blob: bytes | None) -> np.ndarray[tuple[int], np.dtype[np.uint32]] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.uint32).copy()


class SignatureTable:
    """An open signature store: one connection, used by one thread for one run."""

    def __init__(self, db: sqlite3.Connection) -> None:
        """Wrap an open connection (see :meth:`SignatureStore.open`)."""
        self._db = db

    def put(
        self,
        tenant: str,
        doc_id: str,
        content_hash: str,
        scheme: str,
        items: Sequence[Signed],
    ) -> None:
        """Replace the signatures of one document (its own and its chunks')."""
        with self._db:
            self._db.execute(
                "DELETE FROM signatures WHERE tenant = ? AND doc_id = ?", (tenant, doc_id)
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        tenant,
                        doc_id,
                        item.item_id,
                        content_hash,
                        scheme,
                        item.signature.digest,
                        None
                        if item.signature.values is None
                        else item.signature.values.astype(np.uint32).tobytes(),
                    )
                    for item in items
                ],
            )

    def get(self, tenant: str, doc_id: str, content_hash: str, scheme: str) -> list[Signed]:
        """The signatures of a document at ``content_hash``, document first; [] if none."""
        rows = self._db.execute(
            "SELECT item_id, digest, minhash FROM signatures"
            " WHERE tenant = ? AND doc_id = ? AND content_hash = ? AND scheme = ?",
            (tenant, doc_id, content_hash, scheme),
        ).fetchall()
        signed = [Signed(item, Signature(bytes(digest), _values(mh))) for item, digest, mh in rows]
        signed.sort(key=lambda s: s.item_id != doc_id)
        return signed

    def delete(self, tenant: str, doc_ids: Iterable[str]) -> None:
        """Forget the signatures of documents that left the index."""
        with self._db:
            self._db.executemany(
                "DELETE FROM signatures WHERE tenant = ? AND doc_id = ?",
                [(tenant, doc_id) for doc_id in doc_ids],
            )


@dataclass(frozen=True)
class SignatureStore:
    """Where signatures are kept: a SQLite file, shared by the processes of one data dir."""

    path: Path

    @contextmanager
    def open(self) -> Iterator[SignatureTable]:
        """Open the store for one run (creating it if needed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30.0)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            yield SignatureTable(db)
