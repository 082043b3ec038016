"""``ragent worker``'s loop: take queued ingestion jobs and run them, retried or dead-lettered.

A worker runs one job at a time through the same :class:`JobManager` steps as an API
process does (URL fetches, the parser sandbox, the pipeline). While it works it renews
its hold on the job; a job that raises (an engine is down) is left pending and another
delivery retries it after ``server.ingest_claim_idle_s``, from a fresh record, until
``server.ingest_max_attempts``; then it fails and goes to the dead-letter stream. A
retry is idempotent: each document's chunks are replaced whole under its stable id, and
an unchanged document is skipped.

The uploaded files are written to this worker's data dir only while their job runs
(the pipeline reads paths) and removed when it ends either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import socket
from typing import Any

from app.resources import Resources
from app.server.api_metrics import Metrics
from app.server.ingestion.jobs import JobManager
from app.server.ingestion.queue import Delivery, IngestQueue
from app.server.ingestion.upload_checks import discard
from app.server.ingestion.uploads import Author, Upload, keep_path, upload_dir
from app.server.shared_state import SharedState
from app.settings import Settings

__all__ = ["IngestWorker", "consumer_name"]

log = logging.getLogger("ragent.worker")


def consumer_name() -> str:
    """This process's name in the consumer group: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class IngestWorker:
    """Runs queued ingestion jobs, one at a time."""

    def __init__(
        self,
        settings: Settings,
        resources: Resources,
        state: SharedState,
        queue: IngestQueue,
        *,
        consumer: str | None = None,
    ) -> None:
        """Bind to the engines, the job records and the queue."""
        self.settings = settings
        self.queue = queue
        self.consumer = consumer or consumer_name()
        self.jobs = JobManager(settings, resources, state, Metrics())

    async def run(self, stop: asyncio.Event, *, block_s: float = 2.0) -> None:
        """Take and run jobs until ``stop`` is set (the job in hand is finished first)."""
        from redis.exceptions import ConnectionError, TimeoutError

        while not stop.is_set():
            try:
                delivery = await self.queue.next(self.consumer, block_s)
            except (ConnectionError, TimeoutError) as exc:  # Redis restarting: wait for it
                log.warning("ingestion queue unreachable: %s", type(exc).__name__)
                await asyncio.sleep(block_s)
                continue
            if delivery is not None:
                await self.handle(delivery)

    async def handle(self, delivery: Delivery) -> None:
        """Run one delivered job: done, left for a retry, or dead-lettered."""
        payload = delivery.job
        job: dict[str, Any] = copy.deepcopy(payload["record"])  # each attempt starts afresh
        job["attempts"] = delivery.attempt
        limit = self.queue.max_attempts
        if delivery.attempt > limit:  # the workers of the earlier attempts died on it
            await self._give_up(
                delivery, job, f"job failed: no worker finished it in {limit} attempts"
            )
            return
        tenant, acl = str(payload["tenant"]), tuple(payload["acl"])
        local: list[Upload] = []
        holding = asyncio.create_task(self._hold(delivery))
        try:
            uploads = await self._materialise(delivery, job, tenant, acl, local)
            await self.jobs.work(job, tenant, uploads, list(payload["urls"]), acl)
        except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered, with a reason
            reason = type(exc).__name__
            if delivery.attempt >= limit:
                await self._give_up(delivery, job, f"job failed: {reason}")
                return
            log.warning("ingest job %s attempt %d failed: %s", job["id"], delivery.attempt, reason)
            job["status"] = "queued"
            job["errors"].append(
                {"source": "", "reason": f"attempt {delivery.attempt} failed: {reason}; retrying"}
            )
            await self.jobs._save(job)  # left pending: a later delivery retries it
            return
        finally:
            holding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holding
            discard(local)
            await asyncio.to_thread(self._forget_fetched, tenant, acl, job, payload["urls"])
        await self.queue.done(delivery)

    async def _materialise(
        self,
        delivery: Delivery,
        job: dict[str, Any],
        tenant: str,
        acl: tuple[str, ...],
        local: list[Upload],
    ) -> list[Upload]:
        """Write the job's files where the pipeline reads them; ``local`` collects them."""
        author = Author.of(job["owner"], acl)
        uploads: list[Upload] = []
        for file in delivery.files:
            path = await asyncio.to_thread(
                keep_path, self.settings, tenant, file.source, file.name, author=author
            )
            upload = Upload(path, file.source)
            local.append(upload)
            if not await self.queue.copy_file(file, path):
                job["errors"].append({"source": file.source, "reason": "upload expired"})
                job["progress"]["files_done"] += 1
                continue
            uploads.append(upload)
        return uploads

    def _forget_fetched(
        self, tenant: str, acl: tuple[str, ...], job: dict[str, Any], urls: list[str]
    ) -> None:
        """Remove the files fetched for ``urls`` (blocking)."""
        author = Author.of(job["owner"], acl)
        for url in urls:
            folder = upload_dir(self.settings, tenant, url, author=author)
            discard(Upload(path, url) for path in (folder.iterdir() if folder.is_dir() else ()))

    async def _give_up(self, delivery: Delivery, job: dict[str, Any], reason: str) -> None:
        await self.jobs.fail(job, reason)
        await self.queue.dead_letter(delivery, reason)

    async def _hold(self, delivery: Delivery) -> None:
        """Renew the hold on a job every third of the claim time, while it runs."""
        interval = self.queue.claim_idle_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.queue.renew(delivery, self.consumer)
            except Exception as exc:  # noqa: BLE001 - a missed renewal is retried next time
                log.warning(
                    "cannot renew ingest job %s: %s", delivery.message_id, type(exc).__name__
                )
                continue
            if not held:
                log.warning("ingest job %s was taken by another worker", delivery.message_id)
                return

    async def close(self) -> None:
        """Stop the parser process."""
        await self.jobs.close()
