"""Where the fan-out writer keeps its document records: SQLite on the pod, or Redis.

A record says what is indexed for a document (its content hash, the pipeline's
fingerprint, its chunk ids), and decides "unchanged, skip" on a re-ingest. In the
embedded index it is a worker's own; in Redis every ingestion worker sees the records of
the others, so a re-upload reaching another or a restarted worker is skipped too.

In Redis a tenant's records are one hash ``ragent:ingest:records:<tenant>``, one field
per document (JSON). The client is synchronous: the writer is called from worker
threads, off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from app.retrieval.types import DocumentRecord

if TYPE_CHECKING:
    import redis

__all__ = ["DocumentRecords", "RedisRecords"]


class DocumentRecords(Protocol):
    """The record methods the fan-out writer uses."""

    def put_record(self, record: DocumentRecord, chunk_ids: Sequence[str]) -> None:
        """Record what is indexed for a document whose chunks live in other engines."""
        ...

    def forget_record(self, tenant_id: str, doc_id: str) -> None:
        """Drop a document's record."""
        ...

    def document(self, tenant_id: str, doc_id: str) -> DocumentRecord | None:
        """Return what is indexed for a document, or None."""
        ...

    def documents(self, tenant_id: str) -> list[DocumentRecord]:
        """Return every document indexed for a tenant, by source."""
        ...

    def flush(self) -> None:
        """Make the records written so far visible to readers."""
        ...


def records_key(tenant_id: str) -> str:
    """The Redis key of a tenant's records."""
    return f"ragent:ingest:records:{tenant_id}"


def _load(tenant_id: str, doc_id: str, raw: bytes) -> DocumentRecord:
    fields = json.loads(raw)
    return DocumentRecord(
        tenant_id=tenant_id,
        doc_id=doc_id,
        source=str(fields["source"]),
        content_hash=str(fields["content_hash"]),
        embed_model=str(fields["embed_model"]),
        index_version=str(fields.get("index_version", "")),
        chunk_ids=tuple(str(c) for c in fields.get("chunk_ids", ())),
    )


class RedisRecords:
    """Document records in Redis, shared by every worker (see the module docstring)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        """Connect lazily to ``url``; a call waits at most ``timeout_s`` for Redis."""
        import redis

        self._r: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def put_record(self, record: DocumentRecord, chunk_ids: Sequence[str]) -> None:
        """Record what is indexed for a document whose chunks live in other engines."""
        value = json.dumps(
            {
                "source": record.source,
                "content_hash": record.content_hash,
                "embed_model": record.embed_model,
                "index_version": record.index_version,
                "chunk_ids": list(chunk_ids),
            }
        )
        self._r.hset(records_key(record.tenant_id), record.doc_id, value)

    def forget_record(self, tenant_id: str, doc_id: str) -> None:
        """Drop a document's record."""
        self._r.hdel(records_key(tenant_id), doc_id)

    def document(self, tenant_id: str, doc_id: str) -> DocumentRecord | None:
        """Return what is indexed for a document, or None."""
        raw: bytes | None = self._r.hget(records_key(tenant_id), doc_id)  # type: ignore[assignment]
        return None if raw is None else _load(tenant_id, doc_id, raw)

    def documents(self, tenant_id: str) -> list[DocumentRecord]:
        """Return every document indexed for a tenant, by source."""
        records = [
            _load(tenant_id, doc_id.decode(), raw)
            for doc_id, raw in self._r.hscan_iter(records_key(tenant_id), count=500)
        ]
        records.sort(key=lambda r: r.source)
        return records

    def flush(self) -> None:
        """Nothing to do: a record is visible once written."""

    def close(self) -> None:
        """Close the connection pool."""
        self._r.close()
