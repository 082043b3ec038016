"""Duplicate-detection signatures kept in Redis, shared by every ingestion worker.

The same store as :class:`~app.ingest.signatures.SignatureStore`, off the pod: a
near-duplicate of a document that another (or a restarted) worker indexed is caught, as
it is within one worker's history with SQLite.

Each document is one hash ``ragent:ingest:sig:<len(tenant)>:<tenant>:<doc_id>`` (the
length keeps tenants and documents with ``:`` in their names apart), with a ``meta``
field (content hash and scheme) and one field per item: its digest and MinHash values,
about 0.6 KB, so no value grows with the document. A document is replaced in one
MULTI/EXEC. The client is synchronous: ingestion runs in worker threads, off the loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from app.ingest.dedup import Signature
from app.ingest.signatures import Signed

if TYPE_CHECKING:
    import redis

__all__ = ["RedisSignatureStore", "RedisSignatureTable"]

_META = b"\x00meta"  # item ids are never empty nor start with NUL: no clash with an item


def signature_key(tenant: str, doc_id: str) -> str:
    """The Redis key of one document's signatures."""
    return f"ragent:ingest:sig:{len(tenant)}:{tenant}:{doc_id}"


def _pack(signature: Signature) -> bytes:
    values = b"" if signature.values is None else signature.values.astype("<u4").tobytes()
    return bytes([len(signature.digest)]) + signature.digest + values


def _unpack(blob: bytes) -> Signature:
    size = blob[0]
    digest, rest = blob[1 : 1 + size], blob[1 + size :]
    values = np.frombuffer(rest, dtype="<u4").astype(np.uint32) if rest else None
    return Signature(bytes(digest), values)


class RedisSignatureTable:
    """The signatures of every worker, in Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        """Use an open client (see :meth:`RedisSignatureStore.open`)."""
        self._r = client

    def put(
        self, tenant: str, doc_id: str, content_hash: str, scheme: str, items: Sequence[Signed]
    ) -> None:
        """Replace the signatures of one document (its own and its chunks')."""
        key = signature_key(tenant, doc_id)
        meta = json.dumps({"content_hash": content_hash, "scheme": scheme}).encode()
        fields: dict[bytes, bytes] = {_META: meta}
        fields.update({item.item_id.encode(): _pack(item.signature) for item in items})
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.execute()

    def get(self, tenant: str, doc_id: str, content_hash: str, scheme: str) -> list[Signed]:
        """The signatures of a document at ``content_hash``, document first; [] if none."""
        fields: dict[bytes, bytes] = self._r.hgetall(signature_key(tenant, doc_id))  # type: ignore[assignment]
        meta = fields.pop(_META, None)
        if meta is None:
            return []
        stored = json.loads(meta)
        if stored.get("content_hash") != content_hash or stored.get("scheme") != scheme:
            return []
        signed = [Signed(item.decode(), _unpack(blob)) for item, blob in fields.items()]
        signed.sort(key=lambda s: (s.item_id != doc_id, s.item_id))
        return signed

    def delete(self, tenant: str, doc_ids: Iterable[str]) -> None:
        """Forget the signatures of documents that left the index."""
        keys = [signature_key(tenant, doc_id) for doc_id in doc_ids]
        if keys:
            self._r.delete(*keys)


class RedisSignatureStore:
    """Signatures in the Redis at ``url``, shared by the workers that use it."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        """Connect lazily to ``url``; a call waits at most ``timeout_s`` for Redis."""
        self.url = url
        self._timeout_s = timeout_s

    @contextmanager
    def open(self) -> Iterator[RedisSignatureTable]:
        """Open a connection for one run."""
        import redis

        client = redis.Redis.from_url(
            self.url, socket_timeout=self._timeout_s, socket_connect_timeout=self._timeout_s
        )
        try:
            yield RedisSignatureTable(client)
        finally:
            client.close()
