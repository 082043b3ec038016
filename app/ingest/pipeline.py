"""Incremental ingestion: load, chunk, embed and index files, skipping unchanged ones."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.ingest.chunking import chunk_text, content_hash, stable_id
from app.ingest.loaders import SUPPORTED_SUFFIXES, LoadError, load_text
from app.llm.tokens import TokenCounter
from app.retrieval.protocols import DocumentWriter, Embedder
from app.retrieval.types import Chunk, DocumentRecord

__all__ = ["IngestReport", "Ingestor", "discover"]


@dataclass
class IngestReport:
    """What an ingest run did; ``ragent ingest --json`` prints it."""

    documents: int = 0
    """Documents indexed (new or changed)."""
    chunks: int = 0
    """Chunks written."""
    unchanged: int = 0
    """Documents skipped because their content was already indexed."""
    duplicates: int = 0
    """Chunks dropped as exact duplicates of another chunk of the same document."""
    skipped: int = 0
    """Files in the given folders with an unsupported type."""
    failed: list[dict[str, str]] = field(default_factory=list)
    """Files that could not be ingested, as ``{"source", "reason"}``."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return asdict(self)


def discover(paths: Sequence[Path]) -> Iterator[tuple[Path, bool]]:
    """Yield ``(file, explicit)`` for each path, walking folders in sorted order.

    Raises:
        FileNotFoundError: A given path does not exist.
    """
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {path}")
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in child.relative_to(path).parts):
                    yield child, False
        else:
            yield path, True


@dataclass(kw_only=True)
class Ingestor:
    """Turns files into indexed chunks for one tenant."""

    writer: DocumentWriter
    embedder: Embedder
    counter: TokenCounter
    chunk_tokens: int
    chunk_overlap: int
    max_file_bytes: int

    def _chunks(
        self, text: str, *, tenant_id: str, doc_id: str, source: str, acl: tuple[str, ...]
    ) -> tuple[list[Chunk], int]:
        pieces = chunk_text(
            text, counter=self.counter, size=self.chunk_tokens, overlap=self.chunk_overlap
        )
        chunks: list[Chunk] = []
        seen: set[str] = set()
        for piece in pieces:
            digest = content_hash(piece.text)
            if digest in seen:
                continue
            seen.add(digest)
            chunks.append(
                Chunk(
                    chunk_id=stable_id(doc_id, digest),
                    doc_id=doc_id,
                    tenant_id=tenant_id,
                    source=source,
                    text=piece.text,
                    span=(piece.start, piece.end),
                    content_hash=digest,
                    acl=acl,
                )
            )
        return chunks, len(pieces) - len(chunks)

    def ingest_file(
        self, path: Path, *, tenant_id: str, acl: Iterable[str], report: IngestReport
    ) -> None:
        """Ingest one file into ``report``; failures are recorded, never raised."""
        source = str(path)
        doc_id = stable_id(tenant_id, str(path.resolve()))
        try:
            text = load_text(path, max_bytes=self.max_file_bytes)
        except LoadError as exc:
            report.failed.append({"source": source, "reason": str(exc)})
            return
        digest = content_hash(text)
        record = DocumentRecord(tenant_id, doc_id, source, digest, self.embedder.model_name)
        existing = self.writer.document(tenant_id, doc_id)
        if existing is not None and (existing.content_hash, existing.embed_model) == (
            digest,
            record.embed_model,
        ):
            report.unchanged += 1
            return
        chunks, dropped = self._chunks(
            text, tenant_id=tenant_id, doc_id=doc_id, source=source, acl=tuple(sorted(set(acl)))
        )
        vectors = self.embedder.embed_documents([c.text for c in chunks])
        self.writer.replace_document(record, chunks, vectors)
        report.documents += 1
        report.chunks += len(chunks)
        report.duplicates += dropped

    def ingest(
        self, paths: Sequence[Path], *, tenant_id: str, acl: Iterable[str] = ()
    ) -> IngestReport:
        """Ingest files and folders; unsupported files inside folders are skipped.

        Raises:
            FileNotFoundError: A given path does not exist (nothing is ingested).
        """
        started = time.perf_counter()
        report = IngestReport()
        groups = tuple(acl)
        for path, explicit in list(discover(paths)):
            if not explicit and path.suffix.lower() not in SUPPORTED_SUFFIXES:
                report.skipped += 1
                continue
            self.ingest_file(path, tenant_id=tenant_id, acl=groups, report=report)
        report.seconds = round(time.perf_counter() - started, 3)
        return report
