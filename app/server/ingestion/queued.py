"""Ingestion jobs that the API only queues: ``ragent worker`` processes run them.

With ``server.ingest_queue`` on, ``POST /v1/ingest`` streams each accepted upload into
Redis (:mod:`app.server.ingestion.queue`), saves the job record and enqueues the job:
nothing is parsed, and nothing kept on disk, in the API's process, so any replica can
take the upload and any worker can run the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Sequence
from typing import Any

from app.server.ingestion.jobs import new_job
from app.server.ingestion.queue import IngestQueue, QueuedFile
from app.server.ingestion.uploads import Author
from app.server.shared_state import SharedState
from app.settings import Settings

__all__ = ["QueuedJobs", "save_job"]


async def save_job(state: SharedState, job: dict[str, Any], ttl_s: int) -> None:
    """Save a job record where ``GET /v1/jobs/{id}`` reads it."""
    job["updated_at"] = int(time.time())
    await state.set(f"job:{job['id']}", json.dumps(job), ttl_s)


class QueuedJobs:
    """Queues ingestion jobs for ``ragent worker``; the routes use it as a JobManager."""

    def __init__(self, settings: Settings, state: SharedState, queue: IngestQueue) -> None:
        """Bind to the shared state (job records) and the queue."""
        self.settings = settings
        self.state = state
        self.queue = queue

    async def keep(
        self, tenant: str, name: str, data: bytes | AsyncIterable[bytes], *, author: Author
    ) -> QueuedFile:
        """Store an uploaded file (whole, or piece by piece) in Redis for the job to come.

        When ``data`` raises, nothing of the file is left in Redis.
        """
        return await self.queue.put_file(data, name, name, self.settings.server.jobs_ttl_s)

    async def discard(self, files: Sequence[QueuedFile]) -> None:
        """Remove stored files that no job will own (the request failed before submitting)."""
        await self.queue.drop_files(files)

    async def submit(
        self,
        *,
        owner: str,
        tenant: str,
        uploads: list[QueuedFile],
        urls: list[str],
        acl: Sequence[str],
        namespace: str | None,
        refused: Sequence[dict[str, str]] = (),
    ) -> dict[str, Any]:
        """Save a job record (status ``queued``) and enqueue the job; returns the record.

        The job owns ``uploads`` from here on: the worker removes them when it ends.
        """
        job = new_job(owner, namespace, len(uploads) + len(urls), refused)
        await save_job(self.state, job, self.settings.server.jobs_ttl_s)
        await self.queue.enqueue(
            {
                "record": job,
                "tenant": tenant,
                "acl": list(acl),
                "urls": list(urls),
                "files": [[f.key, f.source, f.name] for f in uploads],
            }
        )
        return job

    async def get(self, owner: str, job_id: str) -> dict[str, Any] | None:
        """Return a job of ``owner``, or None (unknown, expired or someone else's)."""
        raw = await self.state.get(f"job:{job_id}")
        job = json.loads(raw) if raw else None
        return job if job is not None and job.get("owner") == owner else None

    async def close(self) -> None:
        """Release the queue's connections."""
        await self.queue.close()
