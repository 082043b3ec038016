"""The incremental sync every source shares: hash skip, replace, prune, cursor.

Each changed item is compared with what the index holds by a hash of everything that
shapes it (text, title, metadata and ACL groups), so an ACL change re-indexes the item
and an unchanged item costs no embedding. A document is written whole, in one
transaction per index (:meth:`DocumentWriter.replace_document`), so a sync that dies
mid-way leaves no half-written document visible; the cursor is saved only once a sync
finishes, so the next run lists the same items again, skips those already written and
writes the rest. Deletions are found by comparing the source's ids with the index's
documents of that source.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.ingest.chunking import chunk_document
from app.ingest.ids import content_hash, stable_id
from app.ingest.model import Element, LoadedDocument
from app.ingest.pipeline import PIPELINE_VERSION
from app.ingest.stage import EmbedStage, ReadyDocument
from app.llm.tokens import TokenCounter
from app.retrieval.protocols import DocumentWriter, Embedder
from app.retrieval.types import Chunk, DocumentRecord
from app.sources.connector import Connector, SourceItem
from app.sources.cursors import Cursors, CursorStore
from app.sources.locks import LockFactory, SourceLock, file_locks

__all__ = ["Progress", "SourceSync", "SyncBusyError", "SyncReport", "item_source"]


class SyncBusyError(RuntimeError):
    """Another sync of the same source is running."""


def item_source(source: str, item_id: str) -> str:
    """The ``source`` field an item is indexed under (``source:<name>/<item id>``)."""
    return f"source:{source}/{item_id}"


@dataclass(kw_only=True)
class SyncReport:
    """What one sync of one source did."""

    source: str
    indexed: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    cursor: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain JSON-ready data."""
        return {
            "source": self.source,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks": self.chunks,
            "failed": self.failed,
            "cursor": self.cursor,
            "seconds": self.seconds,
        }


Progress = Callable[[SyncReport], None]
"""Called with the report so far after each item; what it raises ends the sync (the
cursor is then not saved, so the next run lists the same items again)."""


@dataclass(kw_only=True)
class SourceSync:
    """Syncs connectors into the indexes of one tenant."""

    writer: DocumentWriter
    embedder: Embedder
    counter: TokenCounter
    chunk_tokens: int
    chunk_overlap: int
    cursors: Cursors
    """SQLite in the data folder, or Redis shared by the replicas."""
    embed_batch: int = 256
    max_item_chars: int = 1_000_000
    """An item with more text than this is refused (reported as failed, not indexed)."""
    locks: LockFactory | None = None
    """One sync of a source at a time; None: lock files beside the (SQLite) cursor store."""

    def lock(self, tenant_id: str, source: str) -> SourceLock:
        """The lock a sync of ``source`` for ``tenant_id`` holds.

        Raises:
            TypeError: No ``locks`` are given and the cursors are not in a data folder.
        """
        if self.locks is not None:
            return self.locks(tenant_id, source)
        if not isinstance(self.cursors, CursorStore):
            raise TypeError("a sync whose cursors are not in a data folder needs its locks")
        return file_locks(self.cursors.folder)(tenant_id, source)

    @property
    def index_version(self) -> str:
        """Fingerprint of everything that shapes an item's chunks (as the file pipeline's)."""
        return f"p{PIPELINE_VERSION}:c{self.chunk_tokens}/{self.chunk_overlap}"

    def sync(
        self,
        connector: Connector,
        *,
        tenant_id: str,
        full: bool = False,
        progress: Progress | None = None,
    ) -> SyncReport:
        """Bring the index up to date with ``connector``, holding the source's lock.

        Args:
            connector: The source.
            tenant_id: Whose index it feeds.
            full: List every item, not only those changed since the last sync's cursor.
            progress: Told of the report so far after each item.

        Returns:
            The sync's report (also recorded with the new cursor).

        Raises:
            SyncBusyError: Another sync of this source (in any process sharing the lock)
                is running.
        """
        lock = self.lock(tenant_id, connector.name)
        if not lock.acquire():
            raise SyncBusyError(f"a sync of source {connector.name!r} is already running")
        try:
            return self.run(connector, tenant_id=tenant_id, full=full, progress=progress)
        finally:
            lock.release()

    def run(
        self,
        connector: Connector,
        *,
        tenant_id: str,
        full: bool = False,
        progress: Progress | None = None,
    ) -> SyncReport:
        """As :meth:`sync`, for a caller that already holds the source's lock."""
        started = time.perf_counter()
        name = connector.name
        state = None if full else self.cursors.get(tenant_id, name)
        cursor = state.cursor if state is not None else None
        report = SyncReport(source=name, cursor=cursor)
        stage = EmbedStage(
            embedder=self.embedder, writer=self.writer, batch_chunks=self.embed_batch
        )
        items = connector.changed(cursor)
        try:
            for item in items:
                ready = self._document(item, name, tenant_id, report)
                if ready is not None:
                    stage.put(ready)
                if item.version:  # items come oldest first
                    report.cursor = item.version
                if progress is not None:
                    report.indexed, report.chunks = stage.documents, stage.chunks
                    progress(report)
        finally:
            items.close()  # a source's connection is released even when the sync fails
            stage.close()
        self.writer.flush()
        report.indexed, report.chunks = stage.documents, stage.chunks
        report.deleted = self._prune(connector, tenant_id)
        report.seconds = round(time.perf_counter() - started, 3)
        self.cursors.put(tenant_id, name, report.cursor, report.as_dict())
        return report

    def _document(
        self, item: SourceItem, name: str, tenant: str, report: SyncReport
    ) -> ReadyDocument | None:
        source = item_source(name, item.item_id)
        if item.failure:
            report.failed.append({"source": source, "reason": item.failure})
            return None
        if item.unchanged:
            if self.writer.document(tenant, stable_id(tenant, source)) is None:
                report.failed.append(
                    {
                        "source": source,
                        "reason": "unchanged at the source but not in the index"
                        " (a sync with --full reads it again)",
                    }
                )
            else:
                report.unchanged += 1
            return None
        if len(item.text) > self.max_item_chars:
            report.failed.append(
                {"source": source, "reason": f"more than {self.max_item_chars} characters"}
            )
            return None
        acl = tuple(sorted(set(item.acl)))
        digest = content_hash(
            json.dumps([item.title, item.text, sorted(item.metadata.items()), acl])
        )
        doc_id = stable_id(tenant, source)
        existing = self.writer.document(tenant, doc_id)
        if existing is not None and (
            existing.content_hash,
            existing.index_version,
            existing.embed_model,
        ) == (digest, self.index_version, self.embedder.model_name):
            report.unchanged += 1
            return None
        heading = (item.title,) if item.title else ()
        elements = [Element(text=item.title, kind="Title")] if item.title else []
        if item.text.strip():
            elements.append(Element(text=item.text, heading_path=heading))
        if item.metadata:
            fields = "; ".join(f"{k}: {v}" for k, v in sorted(item.metadata.items()))
            elements.append(Element(text=fields, kind="Record", heading_path=heading))
        doc = LoadedDocument(source=source, elements=elements, metadata=dict(item.metadata))
        chunks = [
            Chunk(
                # The item's digest is in every chunk id: a change of its ACL (or title,
                # metadata) changes them, so no answer read under the old version is
                # cached as citing the new one (app/cache checks cited chunk ids).
                chunk_id=stable_id(doc_id, digest, content_hash(piece.text), str(number)),
                doc_id=doc_id,
                tenant_id=tenant,
                source=source,
                text=piece.text,
                span=piece.span,
                content_hash=content_hash(piece.text),
                acl=acl,
                heading=" > ".join(piece.heading_path),
                page=piece.page,
            )
            for number, piece in enumerate(
                chunk_document(
                    doc,
                    counter=self.counter,
                    size=self.chunk_tokens,
                    overlap=self.chunk_overlap,
                    context=True,
                )
            )
        ]
        record = DocumentRecord(
            tenant_id=tenant,
            doc_id=doc_id,
            source=source,
            content_hash=digest,
            embed_model=self.embedder.model_name,
            index_version=self.index_version,
        )
        return ReadyDocument(record, chunks)

    def _prune(self, connector: Connector, tenant: str) -> int:
        """Delete the source's documents whose item is gone at the source."""
        live = {stable_id(tenant, item_source(connector.name, i)) for i in connector.ids()}
        prefix = item_source(connector.name, "")
        deleted = 0
        for record in self.writer.documents(tenant):
            if record.source.startswith(prefix) and record.doc_id not in live:
                self.writer.delete_document(tenant, record.doc_id)
                deleted += 1
        return deleted
