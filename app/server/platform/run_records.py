"""The LangGraph API's record of each run: status, assistant, thread, and who may read it.

A run's events live in the run log of :class:`~app.server.runs.streams.RunManager`; its
record here says what the API's ``Run`` says. Records, a thread's list of runs and the
cancel marks live in :class:`~app.server.shared_state.SharedState` (this process, or Redis
with ``server.redis_url``, so any worker answers for a run of another), for
``server.jobs_ttl_s``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from app.server.errors import ApiError
from app.server.platform.encoding import iso
from app.server.shared_state import SharedState

__all__ = ["RUNS_KEPT", "PlatformRun", "RunBook", "RunStatus"]

RunStatus = Literal["pending", "running", "success", "error", "interrupted"]
RUNS_KEPT = 100
"""Runs a thread's list keeps, newest first."""
_CANCEL_TTL_S = 3600.0


@dataclass(frozen=True, kw_only=True)
class PlatformRun:
    """One run, as the API's ``Run`` describes it."""

    run_id: str
    thread_id: str
    assistant_id: str
    owner: str
    status: RunStatus = "pending"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "reject"
    stateless: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The API's ``Run``."""
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "status": self.status,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "metadata": self.metadata,
            "multitask_strategy": self.multitask_strategy,
            "kwargs": {},
        }


class RunBook:
    """Run records, each thread's runs, and cancel marks."""

    def __init__(self, state: SharedState, *, ttl_s: float) -> None:
        """Keep records ``ttl_s`` seconds after their last change."""
        self.state = state
        self.ttl_s = ttl_s

    async def put(self, run: PlatformRun) -> None:
        """Write a run's record; a new run goes first in its thread's list."""
        await self.state.set(f"lgrun:{run.run_id}", json.dumps(asdict(run)), self.ttl_s)
        listed = f"lgruns:{run.owner}/{run.thread_id}"
        ids = json.loads(await self.state.get(listed) or "[]")
        if run.run_id not in ids:
            ids = [run.run_id, *ids][:RUNS_KEPT]
            await self.state.set(listed, json.dumps(ids), self.ttl_s)

    async def set_status(self, run: PlatformRun, status: RunStatus) -> PlatformRun:
        """Write a run's new status; returns the new record."""
        changed = replace(run, status=status, updated_at=time.time())
        await self.put(changed)
        return changed

    async def get(self, run_id: str) -> PlatformRun | None:
        """A run's record, or None."""
        raw = await self.state.get(f"lgrun:{run_id}")
        return None if raw is None else PlatformRun(**json.loads(raw))

    async def own(self, owner: str, thread_id: str, run_id: str) -> PlatformRun:
        """The caller's run on the thread.

        Raises:
            ApiError: 404 when there is none (another owner's run included).
        """
        run = await self.get(run_id)
        if run is None or run.owner != owner or run.thread_id != thread_id:
            raise ApiError(404, f"no run {run_id!r} on thread {thread_id!r}", "not_found")
        return run

    async def of_thread(self, owner: str, thread_id: str) -> list[PlatformRun]:
        """A thread's runs, newest first."""
        ids = json.loads(await self.state.get(f"lgruns:{owner}/{thread_id}") or "[]")
        runs = [await self.get(run_id) for run_id in ids]
        return [run for run in runs if run is not None]

    async def forget_thread(self, owner: str, thread_id: str) -> None:
        """Drop a thread's list of runs."""
        await self.state.delete(f"lgruns:{owner}/{thread_id}")

    async def cancel(self, run_id: str) -> None:
        """Mark a run to be cancelled: the process that runs it stops it."""
        await self.state.set(f"lgcancel:{run_id}", "1", _CANCEL_TTL_S)

    async def cancelled(self, run_id: str) -> bool:
        """Whether a run was marked to be cancelled."""
        return await self.state.get(f"lgcancel:{run_id}") is not None
