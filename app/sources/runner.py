"""A sync as a recorded run: the source's lock, its status while it runs, its result after.

Every way a sync starts (the schedule, ``POST /v1/sources/{name}/sync``, ``ragent
sources sync``) goes through :class:`SourceRunner`, so the lock and the status are the
same whichever starts it. The status is written before the lock is let go, so another
replica that takes the lock next already sees when the source last synced.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.sources.connector import Connector
from app.sources.locks import SourceLock
from app.sources.status import StatusStore
from app.sources.sync import SourceSync, SyncReport

__all__ = ["SourceRunner", "SyncStopped", "holder_name"]

_PROGRESS_EVERY_S = 1.0
"""Least time between two progress writes of one sync."""


class SyncStopped(RuntimeError):
    """The process is stopping: the sync ends between two items (and resumes next time)."""


def holder_name() -> str:
    """This process, as runs record it: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


@dataclass(kw_only=True)
class SourceRunner:
    """Runs syncs under the source's lock and records their status (blocking calls)."""

    sync: SourceSync
    status: StatusStore
    holder: str = field(default_factory=holder_name)
    stop: threading.Event = field(default_factory=threading.Event)
    """Set when the process stops: running syncs end after their current item."""

    def claim(self, tenant_id: str, source: str) -> SourceLock | None:
        """Take the source's lock; None when a sync of it runs (anywhere the lock reaches)."""
        lock = self.sync.lock(tenant_id, source)
        return lock if lock.acquire() else None

    def due(self, tenant_id: str, source: str, every_s: float, now: float | None = None) -> bool:
        """Whether a scheduled source's last run ended ``every_s`` or more ago (or never ran)."""
        status = self.status.get(tenant_id, source) or {}
        finished = status.get("finished_at")
        if not isinstance(finished, int | float):
            return True
        return (time.time() if now is None else now) >= finished + every_s

    def claim_due(self, tenant_id: str, source: str, every_s: float) -> SourceLock | None:
        """Take the lock of a source that is due; None when it is not due or is running.

        Due is checked again once the lock is held: a replica that synced the source
        meanwhile has recorded it.
        """
        if not self.due(tenant_id, source, every_s):
            return None
        lock = self.claim(tenant_id, source)
        if lock is not None and not self.due(tenant_id, source, every_s):
            lock.release()
            return None
        return lock

    def state(self, tenant_id: str, source: str) -> dict[str, Any]:
        """The source's status, with ``running`` read from its lock."""
        status = self.status.get(tenant_id, source) or {"source": source, "state": "never"}
        running = self.sync.lock(tenant_id, source).held()
        if status.get("state") == "running" and not running:
            status["state"] = "interrupted"  # its process died mid-sync
        status["running"] = running
        return status

    def run(
        self,
        connector: Connector,
        *,
        tenant_id: str,
        lock: SourceLock,
        full: bool = False,
        trigger: str = "manual",
        every_s: float | None = None,
    ) -> dict[str, Any]:
        """Sync ``connector`` with ``lock`` held (taken by :meth:`claim`), then let it go.

        A failing sync is recorded, not raised: its error is the run's result.

        Returns:
            The run: who ran it, when, why, and the sync's report or error.
        """
        name = connector.name
        started = time.time()
        run: dict[str, Any] = {
            "source": name,
            "tenant_id": tenant_id,
            "holder": self.holder,
            "trigger": trigger,
            "started_at": started,
        }
        previous = self.status.get(tenant_id, name) or {}
        status: dict[str, Any] = {
            **previous,
            "source": name,
            "state": "running",
            "run": run,
            "progress": {},
        }
        written = [0.0]

        def progress(report: SyncReport) -> None:
            if self.stop.is_set():
                raise SyncStopped("the process is stopping")
            now = time.monotonic()
            if now - written[0] >= _PROGRESS_EVERY_S:
                written[0] = now
                counts = ("indexed", "unchanged", "chunks")
                status["progress"] = {k: getattr(report, k) for k in counts}
                self.status.put(tenant_id, name, status)

        try:
            self.status.put(tenant_id, name, status)
            state = "ok"
            try:
                report = self.sync.run(connector, tenant_id=tenant_id, full=full, progress=progress)
                run.update(report.as_dict(), error=None)
            except SyncStopped as exc:
                run.update(error=_reason(exc))
                state = "stopped"
            except Exception as exc:  # noqa: BLE001 - a source's failure is its run's result
                run.update(error=_reason(exc))
                state = "failed"
            run["finished_at"] = time.time()
            run["seconds"] = round(run["finished_at"] - started, 3)
            # A stopped sync is due again at once: it was not finished.
            finished = previous.get("finished_at") if state == "stopped" else run["finished_at"]
            self.status.put(
                tenant_id,
                name,
                {
                    "source": name,
                    "state": state,
                    "finished_at": finished,
                    "next_run_at": finished + every_s if every_s and finished else None,
                    "last_result": run,
                },
            )
            self.status.add_run(tenant_id, name, run)
        finally:
            lock.release()
        return run
