"""The ingestion queue: jobs for ``ragent worker`` on a Redis stream, their files beside it.

A Redis stream with one consumer group rather than a job library (rq, arq, saq): the API
already holds a Redis client, and a stream gives each piece this queue needs natively.
``XREADGROUP`` hands a job to one worker; it stays in the group's pending list until the
worker acknowledges it, so a worker killed mid-job loses nothing. A live worker renews
its hold (``XCLAIM ... JUSTID``, which resets the idle time without counting a delivery);
one that died, or failed the job and left it, stops renewing, and ``XAUTOCLAIM`` hands
the job to the next worker that asks, counting one more delivery. Past
``max_attempts`` deliveries the job goes to a dead-letter stream instead.

Uploaded files travel as Redis strings of their own (``ragent:ingest:file:<uuid>``),
bounded by the upload limits and with the job record's TTL, and are deleted once the
job ends either way: no replica or worker keeps them on its disk. Neither side holds a
whole file: the API appends 1 MiB pieces to a ``ragent:ingest:partial:<uuid>`` key (a
TTL of a minute, renewed with each piece) and renames it into place once complete, so a
failed, refused or cancelled upload leaves nothing a worker can see, and a killed API
process nothing that outlives the minute; a worker reads a file back by ranges.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["DEAD", "STREAM", "Delivery", "IngestQueue", "QueuedFile"]

STREAM = "ragent:ingest:queue"
DEAD = "ragent:ingest:dead"
_GROUP = "workers"
_FILE = "ragent:ingest:file:"
_PARTIAL = "ragent:ingest:partial:"
_PARTIAL_TTL_S = 60
"""A partial upload outlives its writer (a killed API process) by at most this long."""
_READ_BYTES = 1 << 20
_DEAD_MAXLEN = 10_000
"""The dead-letter stream keeps about this many jobs (oldest trimmed first)."""


@dataclass(frozen=True)
class QueuedFile:
    """An uploaded file waiting in Redis for its job."""

    key: str
    """The Redis key of its bytes."""
    source: str
    """The source name it is indexed under."""
    name: str
    """The (safe) file name it is kept under while parsed; its suffix picks the loader."""


@dataclass(frozen=True)
class Delivery:
    """One job handed to one worker."""

    message_id: str
    job: dict[str, Any]
    """What the API enqueued: the job record as first saved, tenant, acl, urls, files."""
    attempt: int
    """1 for the first delivery; more after a worker failed or died on it."""

    @property
    def files(self) -> list[QueuedFile]:
        """The job's uploaded files."""
        return [QueuedFile(*f) for f in self.job.get("files", [])]


class IngestQueue:
    """Ingestion jobs on a Redis stream with a consumer group and a dead-letter stream."""

    def __init__(self, url: str, *, claim_idle_s: float, max_attempts: int) -> None:
        """Connect lazily to ``url``.

        Args:
            url: The Redis URL (``server.redis_url``).
            claim_idle_s: A job not renewed for this long is handed to another worker.
            max_attempts: Deliveries of a job before it is dead-lettered.
        """
        from redis.asyncio import Redis

        self._r: Any = Redis.from_url(url)
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.max_attempts = max_attempts
        self._group_made = False

    async def _group(self) -> None:
        if self._group_made:
            return
        from redis.exceptions import ResponseError

        try:
            await self._r.xgroup_create(STREAM, _GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_made = True

    async def put_file(
        self, data: bytes | AsyncIterable[bytes], source: str, name: str, ttl_s: int
    ) -> QueuedFile:
        """Store one uploaded file for a job that is about to be enqueued.

        ``data`` may come as pieces: each is appended to a partial key, renamed into place
        when ``data`` ends. When ``data`` raises (a file over the size limit) or the task
        is cancelled, the partial key is deleted and the error propagates.
        """
        token = uuid.uuid4().hex
        key, partial = f"{_FILE}{token}", f"{_PARTIAL}{token}"
        pieces = _one(data) if isinstance(data, bytes) else data
        try:
            await self._r.set(partial, b"", ex=_PARTIAL_TTL_S)
            async for piece in pieces:
                pipe = self._r.pipeline(transaction=False)
                pipe.append(partial, piece)
                pipe.expire(partial, _PARTIAL_TTL_S)
                await pipe.execute()
            pipe = self._r.pipeline(transaction=True)
            pipe.rename(partial, key)
            pipe.expire(key, ttl_s)
            await pipe.execute()
        except BaseException:
            # Shielded: a cancelled request still removes what it wrote.
            await asyncio.shield(self._r.delete(partial))
            raise
        return QueuedFile(key, source, name)

    async def get_file(self, file: QueuedFile) -> bytes | None:
        """The bytes of a queued file, or None when it expired or was removed."""
        data = await self._r.get(file.key)
        return None if data is None else bytes(data)

    async def copy_file(self, file: QueuedFile, path: Path) -> bool:
        """Write a queued file to ``path`` by 1 MiB ranges; False when it expired or was removed.

        ``path`` is left absent on False.
        """
        size = int(await self._r.strlen(file.key))
        if size == 0 and not await self._r.exists(file.key):
            return False
        out: IO[bytes] = await asyncio.to_thread(open, path, "wb")
        complete = False
        try:
            for start in range(0, size, _READ_BYTES):
                end = min(start + _READ_BYTES, size) - 1
                piece = bytes(await self._r.getrange(file.key, start, end))
                if len(piece) != end - start + 1:  # expired or removed meanwhile
                    return False
                await asyncio.to_thread(out.write, piece)
            complete = True
        finally:
            await asyncio.to_thread(out.close)
            if not complete:
                await asyncio.to_thread(path.unlink, missing_ok=True)
        return True

    async def drop_files(self, files: Sequence[QueuedFile]) -> None:
        """Remove queued files (their job ended, or was never enqueued)."""
        if files:
            await self._r.delete(*[f.key for f in files])

    async def enqueue(self, job: dict[str, Any]) -> str:
        """Add a job; returns its message id."""
        await self._group()
        return str((await self._r.xadd(STREAM, {"job": json.dumps(job)})).decode())

    async def next(self, consumer: str, block_s: float) -> Delivery | None:
        """The next job for ``consumer``: an abandoned one first, else a new one.

        Waits up to ``block_s`` for a new job; returns None when none came.
        """
        await self._group()
        _, claimed, _ = await self._r.xautoclaim(
            STREAM, _GROUP, consumer, self.claim_idle_ms, start_id="0-0", count=1
        )
        entries = [e for e in claimed if e is not None and e[1]]
        if not entries:
            reply = await self._r.xreadgroup(
                _GROUP, consumer, {STREAM: ">"}, count=1, block=max(1, int(block_s * 1000))
            )
            entries = reply[0][1] if reply else []
        if not entries:
            return None
        message_id, fields = entries[0]
        message_id = message_id.decode()
        pending = await self._r.xpending_range(STREAM, _GROUP, message_id, message_id, 1)
        attempt = int(pending[0]["times_delivered"]) if pending else 1
        return Delivery(message_id, json.loads(fields[b"job"]), attempt)

    async def renew(self, delivery: Delivery, consumer: str) -> bool:
        """Keep holding a job being worked on; False when another worker has taken it."""
        held = await self._r.xclaim(STREAM, _GROUP, consumer, 0, [delivery.message_id], justid=True)
        return bool(held)

    async def done(self, delivery: Delivery) -> None:
        """Acknowledge a finished job and remove it and its files."""
        pipe = self._r.pipeline(transaction=True)
        pipe.xack(STREAM, _GROUP, delivery.message_id)
        pipe.xdel(STREAM, delivery.message_id)
        for file in delivery.files:
            pipe.delete(file.key)
        await pipe.execute()

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a job that failed ``max_attempts`` times to the dead-letter stream."""
        record = {k: v for k, v in delivery.job.items() if k != "files"}
        entry = {"job": json.dumps(record), "reason": reason, "attempts": delivery.attempt}
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(DEAD, entry, maxlen=_DEAD_MAXLEN, approximate=True)
        pipe.xack(STREAM, _GROUP, delivery.message_id)
        pipe.xdel(STREAM, delivery.message_id)
        for file in delivery.files:
            pipe.delete(file.key)
        await pipe.execute()

    async def depth(self) -> tuple[int, int]:
        """Jobs waiting or being worked on, and jobs in the dead-letter stream."""
        return int(await self._r.xlen(STREAM)), int(await self._r.xlen(DEAD))

    async def close(self) -> None:
        """Release the connections."""
        await self._r.aclose()


async def _one(data: bytes) -> AsyncIterable[bytes]:
    yield data
