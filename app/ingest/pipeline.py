"""Incremental ingestion: parse (worker processes) -> clean, dedup, chunk -> embed and index.

Files are parsed in worker processes whose memory and time are capped
(:mod:`app.ingest.sandbox`), after checks that bound what each may expand to
(:mod:`app.ingest.loaders.expansion`).

The three stages overlap: workers parse files ahead while this process strips
boilerplate, drops duplicates and chunks, and a thread embeds and writes whole
documents. Unchanged files (same bytes, same settings, same embedder) are
skipped before any parsing.

Duplicate verdicts do not depend on which files changed: the duplicate filters of a run
are seeded with the stored signatures (:mod:`app.ingest.signatures`) of the documents it
skips as unchanged, so a near-copy dropped once is dropped again on a plain re-run. An
unchanged file without a stored signature is parsed and chunked to sign it, never embedded.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.ingest.chunking import chunk_document
from app.ingest.clean import clean_documents
from app.ingest.dedup import Deduplicator, Signature
from app.ingest.ids import chunk_key, content_hash, stable_id, with_acl
from app.ingest.loaders import RECORD_SUFFIXES, SUPPORTED_SUFFIXES, ExpansionLimits, RecordSpec
from app.ingest.model import LoadedDocument
from app.ingest.progress import IngestProgress
from app.ingest.report import IngestReport
from app.ingest.sandbox import ParseSandbox, SandboxLimits
from app.ingest.scheduling import Discovery, batches, discover, within
from app.ingest.signatures import Signatures, SignatureSource, Signed
from app.ingest.stage import EmbedStage, ReadyDocument
from app.ingest.worker import ParseJob, ParseResult, parse_file
from app.llm.tokens import TokenCounter
from app.retrieval.protocols import DocumentWriter, Embedder
from app.retrieval.types import Chunk, DocumentRecord

__all__ = ["IngestOptions", "IngestReport", "Ingestor"]

# 3: chunks are embedded after their heading path, and leave room for it.
# 4: an HTML page's <title> leads its heading paths where its first heading does not say it.
PIPELINE_VERSION = "4"
# Documents are cleaned of cross-document boilerplate in groups of this many.
_BOILERPLATE_BATCH = 32


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """What to ingest for whom."""

    tenant_id: str
    acl: tuple[str, ...] = ()
    workers: int = 1
    """Parser processes; 0 counts as 1, except for an :class:`Ingestor` without
    ``sandbox`` limits, which then parses in this process (tests and trusted files only)."""
    prune: bool = False
    """Remove indexed documents under the given paths whose source is gone."""
    records: RecordSpec | None = None
    progress: bool | None = None
    """Show a progress bar on stderr; None: when stderr is a terminal."""


@dataclass(kw_only=True)
class Ingestor:
    """Turns files into indexed chunks."""

    writer: DocumentWriter
    embedder: Embedder
    counter: TokenCounter
    chunk_tokens: int
    chunk_overlap: int
    max_file_bytes: int
    near_duplicate_threshold: float = 0.9
    embed_batch: int = 256
    signatures: SignatureSource | None = None
    """Where the duplicate signatures of indexed documents are kept between runs; without
    one, an unchanged file is parsed (not embedded) to sign it whenever a run has others
    to check."""
    expansion: ExpansionLimits = field(default_factory=ExpansionLimits)
    """How far a file may expand once parsed (checked before it is parsed)."""
    sandbox: SandboxLimits | None = None
    """The memory and time caps of the parser processes; None: no caps, and with
    ``workers=0`` files are parsed in this process (for tests and trusted files only)."""
    parsers: ParseSandbox | None = None
    """Parser processes kept by the caller across runs (a server's); None: started for each
    run that needs them, and stopped at its end."""
    _report: IngestReport = field(default_factory=IngestReport, init=False)
    _docs: Deduplicator = field(init=False)
    _chunks: Deduplicator = field(init=False)
    _sources: dict[str, str] = field(default_factory=dict, init=False)
    _boilerplate: set[str] = field(default_factory=set, init=False)
    _parsed_ok: set[Path] = field(default_factory=set, init=False)
    _unchanged: list[ParseJob] = field(default_factory=list, init=False)
    _table: Signatures | None = field(default=None, init=False)

    def _reset(self) -> IngestReport:
        # Duplicates are found within one run of one tenant; the documents it skips as
        # unchanged take part through their stored signatures (see _seed).
        self._report = IngestReport()
        self._unchanged = []
        self._docs = Deduplicator(threshold=self.near_duplicate_threshold)
        self._chunks = Deduplicator(threshold=self.near_duplicate_threshold)
        self._sources = {}
        self._boilerplate = set()
        self._parsed_ok = set()
        return self._report

    @property
    def index_version(self) -> str:
        """Fingerprint of everything that shapes a document's chunks."""
        return f"p{PIPELINE_VERSION}:c{self.chunk_tokens}/{self.chunk_overlap}"

    def ingest(self, paths: Sequence[Path], options: IngestOptions) -> IngestReport:
        """Ingest files and folders.

        Raises:
            FileNotFoundError: A given path does not exist (nothing is ingested).
        """
        started = time.perf_counter()
        found = discover(paths)
        report = self._reset()
        report.dropped.extend(
            {"source": str(link.path), "reason": f"{link.reason}: not followed"}
            for link in found.refused
        )
        with ExitStack() as stack:
            if self.signatures is not None:
                self._table = stack.enter_context(self.signatures.open())
            try:
                self._run(found, paths, options)
            finally:
                self._table = None
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _run(self, found: Discovery, paths: Sequence[Path], options: IngestOptions) -> None:
        report = self._report
        jobs: list[ParseJob] = []
        seen: set[str] = set()
        for path, explicit in found.files:
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES and not explicit:
                report.skipped += 1
                continue
            job = self._plan(path, options, seen)
            if job is not None:
                jobs.append(job)
        if jobs:  # only a run that checks something needs the others' signatures
            jobs[:0] = self._seed(options.tenant_id)
        stage = EmbedStage(
            embedder=self.embedder, writer=self.writer, batch_chunks=self.embed_batch
        )
        parse_seconds = 0.0
        try:
            with IngestProgress(len(jobs), enabled=options.progress) as progress:
                for batch in batches(self._parsed(jobs, options.workers), _BOILERPLATE_BATCH):
                    parse_seconds += sum(r.seconds for r in batch)
                    for ready in self._prepare(batch, options, seen):
                        stage.put(ready)
                    progress.update(
                        files=len(batch), documents=stage.documents, chunks=stage.chunks
                    )
        finally:
            stage.close()
        flush_started = time.perf_counter()
        self.writer.flush()
        stage.index_seconds += time.perf_counter() - flush_started
        report.documents, report.chunks = stage.documents, stage.chunks
        if options.prune:
            report.pruned = self._prune(paths, options.tenant_id, seen, found)
        report.timings = {
            "parse": round(parse_seconds, 3),
            "embed": round(stage.embed_seconds, 3),
            "index": round(stage.index_seconds, 3),
        }

    def _seed(self, tenant: str) -> list[ParseJob]:
        """Feed the duplicate filters the signatures of the unchanged documents.

        Returns:
            Jobs that sign the unchanged files whose signatures are not stored (parsed
            first, so that they are seen before anything is checked against them).
        """
        unsigned: list[ParseJob] = []
        scheme = self._docs.scheme
        for job in self._unchanged:
            doc_id = stable_id(tenant, str(job.path.resolve()))
            stored = (
                self._table.get(tenant, doc_id, job.file_hash, scheme)
                if self._table is not None
                else []
            )
            if not stored:
                unsigned.append(replace(job, sign_only=True))
            for item in stored:
                dedup = self._docs if item.item_id == doc_id else self._chunks
                dedup.add_signed(item.item_id, item.signature)
        return unsigned

    def _plan(self, path: Path, options: IngestOptions, seen: set[str]) -> ParseJob | None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._report.failed.append(
                {"source": str(path), "reason": f"cannot read file: {exc.strerror or exc}"}
            )
            return None
        file_hash = hashlib.sha256(data).hexdigest()
        records = options.records if path.suffix.lower() in RECORD_SUFFIXES else None
        job = ParseJob(path, file_hash, self.max_file_bytes, records, limits=self.expansion)
        if records is None:
            doc_id = stable_id(options.tenant_id, str(path.resolve()))
            existing = self.writer.document(options.tenant_id, doc_id)
            if existing is not None and self._is_current(
                existing, with_acl(file_hash, options.acl)
            ):
                self._report.unchanged += 1
                seen.add(doc_id)
                self._sources[doc_id] = str(path)
                self._unchanged.append(job)
                return None
        return job

    def _is_current(self, record: DocumentRecord, content: str) -> bool:
        return (record.content_hash, record.index_version, record.embed_model) == (
            content,
            self.index_version,
            self.embedder.model_name,
        )

    def _parsed(self, jobs: list[ParseJob], workers: int) -> Iterator[ParseResult]:
        if not jobs:
            return
        if self.parsers is not None:
            yield from self.parsers.parse(jobs)
        elif self.sandbox is None and workers <= 0:
            yield from map(parse_file, jobs)
        else:
            limits = self.sandbox or SandboxLimits()
            with ParseSandbox(limits, workers=min(max(1, workers), len(jobs))) as parsers:
                yield from parsers.parse(jobs)

    def _prepare(
        self, batch: list[ParseResult], options: IngestOptions, seen: set[str]
    ) -> Iterator[ReadyDocument]:
        report = self._report
        docs: list[tuple[ParseJob, LoadedDocument]] = []
        for result in batch:
            if result.error is not None and result.job.sign_only:
                continue  # unchanged and indexed: it is only not compared with this time
            if result.error is not None:
                report.failed.append({"source": str(result.job.path), "reason": result.error})
            else:
                self._parsed_ok.add(result.job.path.resolve())
            docs.extend((result.job, doc) for doc in result.documents)
        kept, cleaned = clean_documents(
            [doc for _, doc in docs], known_boilerplate=self._boilerplate
        )
        self._boilerplate |= cleaned.boilerplate.patterns
        report.boilerplate += cleaned.boilerplate.elements + cleaned.boilerplate.page_lines
        report.near_empty += len(cleaned.near_empty)
        report.dropped.extend({"source": s, "reason": "near-empty"} for s in cleaned.near_empty)
        job_of = {doc.source: job for job, doc in docs}
        for doc in kept:
            ready = self._document(doc, job_of[doc.source], options, seen)
            if ready is not None:
                yield ready

    def _document(
        self, doc: LoadedDocument, job: ParseJob, options: IngestOptions, seen: set[str]
    ) -> ReadyDocument | None:
        report = self._report
        tenant = options.tenant_id
        is_record = job.records is not None
        doc_id = stable_id(tenant, doc.source if is_record else str(job.path.resolve()))
        seen.add(doc_id)
        text = doc.text()
        digest = content_hash(text) if is_record else job.file_hash
        acl = tuple(sorted(set(options.acl)))
        signature = self._docs.sign(text)
        if job.sign_only:  # unchanged, signed for the duplicate filters only
            self._known(tenant, doc_id, digest, signature, doc, acl)
            return None
        if is_record:
            existing = self.writer.document(tenant, doc_id)
            if existing is not None and self._is_current(existing, with_acl(digest, acl)):
                report.unchanged += 1
                self._known(tenant, doc_id, digest, signature, doc, acl)
                return None
        verdict = self._docs.check_signed(doc_id, signature)
        if not verdict.kept:
            report.duplicates += 1
            report.dropped.append(
                {
                    "source": doc.source,
                    "reason": f"duplicate of {self._sources[verdict.duplicate_of or '']} "
                    f"({verdict.reason})",
                }
            )
            # An earlier version of it may be indexed: a dropped document is not searchable.
            if self.writer.document(tenant, doc_id) is not None:
                self.writer.delete_document(tenant, doc_id)
                if self._table is not None:
                    self._table.delete(tenant, [doc_id])
            return None
        self._sources[doc_id] = doc.source
        chunks = []
        signed = [Signed(doc_id, signature)]
        for piece in chunk_document(
            doc,
            counter=self.counter,
            size=self.chunk_tokens,
            overlap=self.chunk_overlap,
            context=True,
        ):
            piece_hash = content_hash(piece.text)
            chunk_id = chunk_key(doc_id, piece_hash, acl)
            piece_signature = self._chunks.sign(piece.text)
            if not self._chunks.check_signed(chunk_id, piece_signature).kept:
                report.duplicates += 1
                continue
            signed.append(Signed(chunk_id, piece_signature))
            chunks.append(
                Chunk(
                    chunk_id=chunk_id,
                    doc_id=doc_id,
                    tenant_id=tenant,
                    source=doc.source,
                    text=piece.text,
                    span=piece.span,
                    content_hash=piece_hash,
                    acl=acl,
                    heading=" > ".join(piece.heading_path),
                    page=piece.page,
                )
            )
        record = DocumentRecord(
            tenant_id=tenant,
            doc_id=doc_id,
            source=doc.source,
            content_hash=with_acl(digest, acl),
            embed_model=self.embedder.model_name,
            index_version=self.index_version,
        )
        if self._table is not None:
            self._table.put(tenant, doc_id, digest, self._docs.scheme, signed)
        return ReadyDocument(record, chunks)

    def _known(
        self,
        tenant: str,
        doc_id: str,
        digest: str,
        signature: Signature,
        doc: LoadedDocument,
        acl: tuple[str, ...],
    ) -> None:
        """Feed the filters an unchanged, parsed document and its chunks (not indexed again).

        Its chunks are signed from the stored signatures, or else chunked again (and the
        signatures stored for the next run).
        """
        self._sources[doc_id] = doc.source
        self._docs.add_signed(doc_id, signature)
        scheme = self._docs.scheme
        stored = self._table.get(tenant, doc_id, digest, scheme) if self._table else []
        if stored:
            for item in stored[1:]:
                self._chunks.add_signed(item.item_id, item.signature)
            return
        signed = [Signed(doc_id, signature)]
        for piece in chunk_document(
            doc,
            counter=self.counter,
            size=self.chunk_tokens,
            overlap=self.chunk_overlap,
            context=True,
        ):
            chunk_id = chunk_key(doc_id, content_hash(piece.text), acl)
            piece_signature = self._chunks.sign(piece.text)
            self._chunks.add_signed(chunk_id, piece_signature)
            signed.append(Signed(chunk_id, piece_signature))
        if self._table is not None:
            self._table.put(tenant, doc_id, digest, scheme, signed)

    def _prune(
        self, paths: Sequence[Path], tenant_id: str, seen: set[str], found: Discovery
    ) -> int:
        # Scope is decided on the sources' own (absolute) paths, without following links:
        # a link in a folder does not pull its target into scope, and a file that was
        # indexed through a link now refused is gone from the folder.
        roots = [Path(os.path.abspath(p)) for p in paths] + [p.resolve() for p in paths]
        refused = [Path(os.path.abspath(link.path)) for link in found.refused]
        pruned = 0
        for record in self.writer.documents(tenant_id):
            if record.doc_id in seen:
                continue
            origin = Path(os.path.abspath(record.source.split("#", 1)[0]))
            if not within(origin, roots):
                continue
            # A record missing from a file that parsed is gone; a file that failed to
            # parse this time keeps its last good version.
            gone = (
                not origin.exists()
                or within(origin, refused)
                or ("#" in record.source and origin.resolve() in self._parsed_ok)
            )
            if gone:
                self.writer.delete_document(tenant_id, record.doc_id)
                if self._table is not None:
                    self._table.delete(tenant_id, [record.doc_id])
                pruned += 1
        return pruned
