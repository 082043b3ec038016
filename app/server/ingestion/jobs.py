"""Ingestion jobs: ``POST /v1/ingest`` queues one, ``GET /v1/jobs/{id}`` reports on it.

Jobs run one at a time per process, in a worker thread, through the same pipeline as
``ragent ingest``, in batches of :data:`BATCH_FILES` files so progress moves as they
finish. Files are parsed in a parser process of the server's own, capped in memory and
time and kept warm between jobs (:mod:`app.ingest.sandbox`): a hostile file costs that
process, not the server's memory or its event loop. Uploaded files are kept under
``<data_dir>/uploads/`` (a re-upload of the same name by the same user with the same ACL
replaces the document, see :mod:`app.server.ingestion.uploads`); the indexed source is the uploaded
name, or the URL.
The job record (status, progress, per-file errors) lives in the shared state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.ingest.factory import build_ingestor, sandbox_limits
from app.ingest.pipeline import IngestOptions
from app.ingest.sandbox import ParseSandbox
from app.resources import Resources
from app.retrieval.protocols import DocumentWriter, Vector
from app.retrieval.types import Chunk, DocumentRecord
from app.server.api_metrics import Metrics
from app.server.ingestion.fetch import fetch_url
from app.server.ingestion.upload_checks import discard, refused_paths
from app.server.ingestion.uploads import Author, Upload, keep, keep_stream
from app.server.shared_state import SharedState
from app.settings import Settings

__all__ = ["BATCH_FILES", "JobManager", "new_job"]

log = logging.getLogger("ragent.server")

BATCH_FILES = 16


@dataclass
class _NamedSources:
    """A writer that indexes local upload paths under their public names."""

    inner: DocumentWriter
    names: dict[str, str]

    def _name(self, source: str) -> str:
        path, sep, rest = source.partition("#")
        name = self.names.get(path) or self.names.get(str(Path(path).resolve()))
        return f"{name}{sep}{rest}" if name else source

    def document(self, tenant_id: str, doc_id: str) -> DocumentRecord | None:
        return self.inner.document(tenant_id, doc_id)

    def documents(self, tenant_id: str) -> list[DocumentRecord]:
        return self.inner.documents(tenant_id)

    def replace_document(
        self, record: DocumentRecord, chunks: Sequence[Chunk], vectors: Vector
    ) -> None:
        named = [replace(c, source=self._name(c.source)) for c in chunks]
        self.inner.replace_document(
            replace(record, source=self._name(record.source)), named, vectors
        )

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        return self.inner.delete_document(tenant_id, doc_id)

    def flush(self) -> None:
        self.inner.flush()


class JobManager:
    """Queues and runs ingestion jobs, one at a time in this process."""

    def __init__(
        self, settings: Settings, resources: Resources, state: SharedState, metrics: Metrics
    ) -> None:
        """Bind to the process's engines and shared state."""
        self.settings = settings
        self.resources = resources
        self.state = state
        self.metrics = metrics
        self._one_at_a_time = asyncio.Semaphore(1)
        self._tasks: set[asyncio.Task[None]] = set()
        # One process is enough: jobs run one at a time. Started at the first job.
        self._parsers = ParseSandbox(sandbox_limits(resources), workers=1)

    async def _save(self, job: dict[str, Any]) -> None:
        job["updated_at"] = int(time.time())
        await self.state.set(f"job:{job['id']}", json.dumps(job), self.settings.server.jobs_ttl_s)

    async def keep(
        self, tenant: str, name: str, data: bytes | AsyncIterable[bytes], *, author: Author
    ) -> Upload:
        """Keep an uploaded file (whole, or piece by piece) on this process's disk.

        When ``data`` raises, nothing of the file is left.
        """
        if isinstance(data, bytes):
            return await asyncio.to_thread(
                keep, self.settings, tenant, name, name, data, author=author
            )
        return await keep_stream(self.settings, tenant, name, name, data, author=author)

    async def discard(self, uploads: Sequence[Upload]) -> None:
        """Remove kept files that no job will own (the request failed before submitting)."""
        discard(uploads)

    async def submit(
        self,
        *,
        owner: str,
        tenant: str,
        uploads: list[Upload],
        urls: list[str],
        acl: Sequence[str],
        namespace: str | None,
        refused: Sequence[dict[str, str]] = (),
    ) -> dict[str, Any]:
        """Queue a job and return its record (status ``queued``).

        The job owns ``uploads`` from here on: whatever of them it does not index (a file
        that fails or is dropped, or all of them when the job fails or is cancelled, even
        before it starts) is deleted when it ends. ``refused`` are files refused before
        they were kept: they count as done, with their errors.
        """
        job = new_job(owner, namespace, len(uploads) + len(urls), refused)
        await self._save(job)
        leftover = list(uploads)  # what the job has not indexed (yet)
        task = asyncio.create_task(self._run(job, tenant, leftover, urls, tuple(acl)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: discard(leftover))
        return job

    async def get(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """Return a job of ``owner``, or None (unknown, expired or someone else's)."""
        raw = await self.state.get(f"job:{job_id}")
        job = json.loads(raw) if raw else None
        return job if job is not None and job.get("owner") == owner else None

    async def _run(
        self,
        job: dict[str, Any],
        tenant: str,
        uploads: list[Upload],
        urls: list[str],
        acl: tuple[str, ...],
    ) -> None:
        """Run a job; ``uploads`` is left holding the kept files that were not indexed."""
        async with self._one_at_a_time:
            try:
                await self.work(job, tenant, uploads, urls, acl)
            except Exception as exc:  # noqa: BLE001 - a job fails alone, with a reason
                await self.fail(job, f"job failed: {type(exc).__name__}")

    async def fail(self, job: dict[str, Any], reason: str) -> None:
        """Record a job as failed, with ``reason``."""
        log.error("ingest job %s failed: %s", job["id"], reason)
        job["status"] = "failed"
        job["errors"].append({"source": "", "reason": reason})
        self.metrics.jobs.labels(job["status"]).inc()
        await self._save(job)

    async def work(
        self,
        job: dict[str, Any],
        tenant: str,
        uploads: list[Upload],
        urls: list[str],
        acl: tuple[str, ...],
    ) -> None:
        """Fetch the URLs and ingest every file of ``job``; it ends ``succeeded``.

        ``uploads`` is left holding the kept files that were not indexed. An exception
        (an engine down) leaves the job ``running``: the caller records it or retries.
        """
        job["status"] = "running"
        await self._save(job)
        files = list(uploads)
        author = Author.of(job["owner"], acl)
        for url in urls:
            fetched = await fetch_url(self.settings, tenant, url, author=author)
            if isinstance(fetched, str):
                job["errors"].append({"source": url, "reason": fetched})
                job["progress"]["files_done"] += 1
            else:
                files.append(fetched)
                uploads.append(fetched)
            await self._save(job)
        await self._ingest(job, tenant, files, acl, leftover=uploads)
        job["status"] = "succeeded"
        self.metrics.jobs.labels(job["status"]).inc()
        await self._save(job)

    async def _ingest(
        self,
        job: dict[str, Any],
        tenant: str,
        files: list[Upload],
        acl: tuple[str, ...],
        *,
        leftover: list[Upload],
    ) -> None:
        names = {str(f.path.resolve()): f.source for f in files}
        writer = _NamedSources(self.resources.writer, names)
        ingestor = build_ingestor(replace(self.resources, writer=writer), parsers=self._parsers)
        options = IngestOptions(tenant_id=tenant, acl=acl, workers=1, progress=False)
        progress = job["progress"]
        for start in range(0, len(files), BATCH_FILES):
            batch = files[start : start + BATCH_FILES]
            report = await asyncio.to_thread(ingestor.ingest, [f.path for f in batch], options)
            progress["files_done"] += len(batch)
            progress["documents"] += report.documents
            progress["chunks"] += report.chunks
            progress["unchanged"] += report.unchanged
            for failure in report.failed:
                job["errors"].append(
                    {"source": writer._name(failure["source"]), "reason": failure["reason"]}
                )
            refused = refused_paths(report)
            for upload in batch:
                leftover.remove(upload)
            discard(u for u in batch if str(u.path) in refused)
            await self._save(job)

    async def close(self) -> None:
        """Cancel queued and running jobs (the process is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._parsers.close)


def new_job(
    owner: str, namespace: str | None, files: int, refused: Sequence[dict[str, str]]
) -> dict[str, Any]:
    """A job record as first saved: ``queued``, with ``refused`` files done and in error."""
    return {
        "id": f"job_{uuid.uuid4().hex}",
        "object": "ingest.job",
        "owner": owner,
        "status": "queued",
        "namespace": namespace,
        "created_at": int(time.time()),
        "progress": {
            "files_total": files + len(refused),
            "files_done": len(refused),
            "documents": 0,
            "chunks": 0,
            "unchanged": 0,
        },
        "errors": list(refused),
    }
