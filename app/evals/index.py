"""Index a BEIR corpus into a throwaway store built from the configured engines."""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.evals.beir import BeirDataset, BeirDoc
from app.ingest.ids import content_hash, stable_id
from app.resources import Resources, build_resources
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.passage import indexed_text
from app.retrieval.retriever import HybridRetriever
from app.retrieval.types import Chunk, DocumentRecord, Hit, SearchFilter
from app.settings import Settings

__all__ = ["EvalIndex", "corpus_ids", "temporary_index"]

_INDEX_VERSION = "beir-eval"


@dataclass(frozen=True)
class EvalIndex:
    """A corpus indexed with the configured engines, searchable per engine or fused."""

    resources: Resources
    flt: SearchFilter
    documents: int
    seconds: float
    """Time spent embedding and writing the corpus."""

    @property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever built from the settings."""
        return self.resources.retriever

    def keyword(self, query: str, depth: int) -> list[Hit]:
        """BM25 only: the keyword engine's ``depth`` best chunks."""
        return self.retriever.keywords.search(query, self.flt, depth)

    def dense(self, query: str, depth: int) -> list[Hit]:
        """Dense only: the vector engine's ``depth`` nearest chunks to the query embedding."""
        vector = self.resources.embedder.embed_query(query)
        return self.retriever.vectors.search(vector, self.flt, depth)

    async def hybrid(self, query: str, top_n: int) -> list[Hit]:
        """The configured hybrid retriever, keeping ``top_n`` fused results."""
        return await self.retriever.search(query, self.flt, top_n=top_n)


def corpus_ids(hits: list[Hit]) -> list[str]:
    """The BEIR corpus ids of ``hits`` (each chunk's source), in order."""
    return [hit.chunk.source for hit in hits]


def _document(
    tenant_id: str, corpus_id: str, doc: BeirDoc, model: str
) -> tuple[DocumentRecord, Chunk]:
    """One BEIR entry becomes one document of one chunk, sourced by its corpus id.

    Its text is the title, then the body; the title is its heading too, keyword-indexed as a
    section's heading path is in ingestion.
    """
    text = doc.passage
    digest = content_hash(text)
    doc_id = stable_id(tenant_id, "beir", corpus_id)
    chunk = Chunk(
        chunk_id=stable_id(doc_id, digest),
        doc_id=doc_id,
        tenant_id=tenant_id,
        source=corpus_id,
        text=text,
        span=(0, len(text)),
        content_hash=digest,
        heading=doc.title,
    )
    record = DocumentRecord(
        tenant_id=tenant_id,
        doc_id=doc_id,
        source=corpus_id,
        content_hash=digest,
        embed_model=model,
        index_version=_INDEX_VERSION,
        chunk_ids=(chunk.chunk_id,),
    )
    return record, chunk


def _progress(enabled: bool | None) -> Progress:
    return Progress(
        TextColumn("[bold]index"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not (sys.stderr.isatty() if enabled is None else enabled),
    )


def _index(resources: Resources, dataset: BeirDataset, tenant_id: str, progress: Progress) -> None:
    batch = resources.settings.ingest.embed_batch
    items = list(dataset.corpus.items())
    model = resources.embedder.model_name
    task = progress.add_task("index", total=len(items))
    for start in range(0, len(items), batch):
        documents = [
            _document(tenant_id, cid, doc, model) for cid, doc in items[start : start + batch]
        ]
        vectors = resources.embedder.embed_documents(
            [indexed_text(chunk) for _, chunk in documents]
        )
        for i, (record, chunk) in enumerate(documents):
            resources.writer.replace_document(record, [chunk], vectors[i : i + 1])
        progress.advance(task, len(documents))
    resources.writer.flush()  # catch derived indexes up now, not inside the first search


@contextmanager
def temporary_index(
    settings: Settings, dataset: BeirDataset, *, progress: bool | None = None
) -> Iterator[EvalIndex]:
    """Index ``dataset`` with the engines and embedder of ``settings``, then throw it away.

    Embedded engines live in a temporary data directory. Remote engines get the corpus
    under a fresh tenant of their own, deleted again at the end.

    Args:
        settings: The configuration under evaluation; its ``data_dir`` is not touched.
        dataset: The BEIR corpus to index.
        progress: Draw a progress bar on stderr; None means "when stderr is a terminal".

    Yields:
        The searchable index.
    """
    with tempfile.TemporaryDirectory(prefix="ragent-eval-") as tmp:
        resources = build_resources(settings.model_copy(update={"data_dir": Path(tmp)}))
        tenant_id = f"beir-eval-{uuid.uuid4().hex[:12]}"
        started = time.perf_counter()
        try:
            with _progress(progress) as bar:
                _index(resources, dataset, tenant_id, bar)
            yield EvalIndex(
                resources=resources,
                flt=SearchFilter(tenant_id=tenant_id),
                documents=len(dataset.corpus),
                seconds=time.perf_counter() - started,
            )
        finally:
            if settings.retrieval.vector_backend != "embedded":
                for record in resources.writer.documents(tenant_id):
                    resources.writer.delete_document(tenant_id, record.doc_id)
            if isinstance(resources.writer, EmbeddedIndex):
                resources.writer.close()
