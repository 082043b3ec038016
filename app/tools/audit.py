"""One audit record per tool call, with personal data and secrets redacted.

Records go to the ``ragent.audit`` logger as one JSON object per line and are appended,
from a worker thread so that a run never blocks its event loop, to a JSON-lines file or,
where replicas come and go (``tools.audit_redis_url``), to the Redis stream
:data:`AUDIT_STREAM`, trimmed to about ``tools.audit_max_records``.
Argument strings are redacted (``app.safety``) and cut short, so no document text,
personal data or secret reaches the audit trail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from app.observability.metrics import TOOL_CALLS, count_tool_block
from app.safety import redact

__all__ = ["AUDIT_STREAM", "AuditRecord", "AuditSink", "redact_args"]

logger = logging.getLogger("ragent.audit")

AUDIT_STREAM: Final = "ragent:audit"
MAX_ARG_CHARS: Final = 200
"""Longest argument string kept in a record."""


def _clean(text: str) -> str:
    clean, _ = redact(text)
    return clean if len(clean) <= MAX_ARG_CHARS else clean[: MAX_ARG_CHARS - 1] + "…"


def redact_args(args: Any) -> Any:
    """Redact personal data and secrets in every string of a tool call's arguments.

    Args:
        args: The arguments as the model sent them (any JSON value).

    Returns:
        The same structure, with strings redacted and cut to ``MAX_ARG_CHARS``.
    """
    if isinstance(args, str):
        return _clean(args)
    if isinstance(args, Mapping):
        return {str(k): redact_args(v) for k, v in args.items()}
    if isinstance(args, list | tuple):
        return [redact_args(v) for v in args]
    if args is None or isinstance(args, bool | int | float):
        return args
    return _clean(str(args))


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """What happened in one tool call."""

    tenant: str
    user: str
    thread: str
    tool: str
    risk: str
    call_id: str
    args: Any
    """Redacted arguments."""
    outcome: str
    """``ok``, ``error``, ``timeout``, ``invalid_arguments``, ``unknown_tool``, ``denied``,
    ``rejected``, ``rate_limited``, ``stopped`` or ``duplicate`` (a write that already ran in
    the same request, not run again)."""
    latency_ms: float
    approved_by_user: bool = False
    recovered_from_text: str | None = None
    """The format the model wrote the call in as text (``json``, ``hermes``, ...), when
    it was recovered from there; None for a native tool call."""
    at: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)


class AuditSink:
    """Writes audit records to the log and to a JSON-lines file or a Redis stream."""

    def __init__(
        self, path: Path | None, *, redis_url: str | None = None, max_records: int = 1_000_000
    ) -> None:
        """Append to ``path`` (created with its folder on first write) and/or to Redis.

        Args:
            path: The JSON-lines file; None: none.
            redis_url: Also append to the stream :data:`AUDIT_STREAM` there; None: no stream.
            max_records: About how many records the stream keeps.
        """
        self.path = path
        self.redis_url = redis_url
        self.max_records = max_records
        self._lock = threading.Lock()
        self._redis: Any = None

    async def write(self, record: AuditRecord) -> None:
        """Emit one record; a file that cannot be written is reported, never raised."""
        TOOL_CALLS.labels(
            record.tool if record.risk != "unknown" else "unknown", record.outcome
        ).inc()
        count_tool_block(record.outcome)  # denied, not approved, invalid arguments, runaway
        stamped = record if record.at else _stamp(record)
        line = json.dumps(stamped.as_dict(), ensure_ascii=False, sort_keys=True)
        logger.info(line)
        if self.path is not None:
            await asyncio.to_thread(self._append, self.path, line)
        if self.redis_url is not None:
            await asyncio.to_thread(self._publish, line)

    def _publish(self, line: str) -> None:
        # The blocking client, in a thread: it serves whichever event loop a run is on.
        try:
            with self._lock:
                if self._redis is None:
                    from redis import Redis

                    self._redis = Redis.from_url(str(self.redis_url))
                client = self._redis
            client.xadd(AUDIT_STREAM, {"r": line}, maxlen=self.max_records, approximate=True)
        except Exception as exc:  # noqa: BLE001 - the audit log never fails a tool call
            logger.error("cannot append to the audit stream: %s", type(exc).__name__)

    def _append(self, path: Path, line: str) -> None:
        try:
            with self._lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
        except OSError as exc:
            logger.error("cannot append to the audit file: %s", type(exc).__name__)


def _stamp(record: AuditRecord) -> AuditRecord:
    values = record.as_dict()
    values["at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return AuditRecord(**values)
