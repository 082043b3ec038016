"""The configured sources' syncs in a long-running process: the schedule and the triggers.

``ragent serve`` and ``ragent worker`` each hold one :class:`SourceSyncs`. Every
``tick_s`` it takes, for each source with ``every_s`` whose last run ended that long ago,
the source's lock (Redis across replicas, a lock file otherwise) and runs the sync in a
thread of its own pool: the event loop and the request threads are never held up by a
sync. ``trigger`` starts one at once (the HTTP endpoint), or says that one is running.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.config.sources import SourceSettings
from app.resources import Resources
from app.settings import Settings
from app.sources.configured import settings_source
from app.sources.connector import Connector
from app.sources.locks import SourceLock
from app.sources.runner import SourceRunner

__all__ = ["SourceSyncs", "UnknownSourceError"]

log = logging.getLogger("ragent.sources")

_STOP_WAIT_S = 30.0
"""How long closing waits for running syncs to end after their current item."""


class UnknownSourceError(KeyError):
    """No configured source of the tenant has that name."""


class SourceSyncs:
    """Scheduled and triggered syncs of the configured sources, off the event loop."""

    def __init__(
        self,
        settings: Settings,
        runner: Callable[[], SourceRunner],
        *,
        tick_s: float = 1.0,
        threads: int = 2,
        connect: Callable[[SourceSettings], Connector] | None = None,
    ) -> None:
        """Serve ``settings.sources``; ``runner`` builds the runner (once, in a thread).

        ``connect`` builds a source's connector (:func:`configured_source` by default).
        """
        self.settings = settings
        self._connect = connect or functools.partial(settings_source, settings)
        self.tick_s = tick_s
        self._build = runner
        self._runner: SourceRunner | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="source-sync")
        self._running: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._schedule: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, resources: Resources, **options: Any) -> SourceSyncs:
        """The syncs of ``resources.settings``' sources on the process's engines."""
        from app.sources.factory import build_runner

        return cls(resources.settings, lambda: build_runner(resources), **options)

    def tenant_of(self, cfg: SourceSettings) -> str:
        """Whose index a source feeds."""
        return cfg.tenant_id or self.settings.tenant_id

    def sources(self, tenant_id: str | None = None) -> list[SourceSettings]:
        """The configured sources (of ``tenant_id`` only, when given)."""
        return [
            c for c in self.settings.sources if tenant_id is None or self.tenant_of(c) == tenant_id
        ]

    def source(self, name: str, tenant_id: str | None = None) -> SourceSettings:
        """The configured source ``name`` (of ``tenant_id``, when given).

        Raises:
            UnknownSourceError: There is none.
        """
        for cfg in self.sources(tenant_id):
            if cfg.name == name:
                return cfg
        raise UnknownSourceError(name)

    async def runner(self) -> SourceRunner:
        """The runner, built on first use (off the event loop: it opens files)."""
        if self._runner is None:
            self._runner = await asyncio.to_thread(self._build)
        return self._runner

    def start(self) -> None:
        """Start the schedule if a source has ``every_s``."""
        if any(c.every_s for c in self.settings.sources) and self._schedule is None:
            self._schedule = asyncio.create_task(self._scheduled(), name="source-schedule")

    async def _scheduled(self) -> None:
        failing: dict[str, str] = {}  # logged once until it starts again
        while True:
            for cfg in self.settings.sources:
                if cfg.every_s and cfg.name not in self._running:
                    try:
                        await self._start_if_due(cfg, cfg.every_s)
                        failing.pop(cfg.name, None)
                    except Exception as exc:  # a lost Redis must not end the schedule
                        reason = f"{type(exc).__name__}: {exc}"
                        if failing.get(cfg.name) != reason:
                            failing[cfg.name] = reason
                            log.warning(
                                "source %s: a scheduled sync cannot start: %s", cfg.name, reason
                            )
            await asyncio.sleep(self.tick_s)

    async def _start_if_due(self, cfg: SourceSettings, every_s: float) -> None:
        runner = await self.runner()
        tenant = self.tenant_of(cfg)
        lock = await asyncio.to_thread(runner.claim_due, tenant, cfg.name, every_s)
        if lock is not None:
            self._launch(runner, cfg, lock, trigger="schedule", full=False)

    def _launch(
        self, runner: SourceRunner, cfg: SourceSettings, lock: SourceLock, **how: Any
    ) -> asyncio.Future[dict[str, Any]]:
        def run() -> dict[str, Any]:
            return runner.run(
                self._connect(cfg),
                tenant_id=self.tenant_of(cfg),
                lock=lock,
                every_s=cfg.every_s,
                **how,
            )

        future = asyncio.get_running_loop().run_in_executor(self._pool, run)
        self._running[cfg.name] = future
        future.add_done_callback(lambda _: self._running.pop(cfg.name, None))
        return future

    async def trigger(self, name: str, *, tenant_id: str, full: bool = False) -> bool:
        """Start a sync of ``name`` now; False when one is running (here or elsewhere).

        Raises:
            UnknownSourceError: The tenant has no source of that name.
        """
        cfg = self.source(name, tenant_id)
        runner = await self.runner()
        lock = await asyncio.to_thread(runner.claim, tenant_id, name)
        if lock is None:
            return False
        self._launch(runner, cfg, lock, trigger="manual", full=full)
        return True

    async def status(self, name: str, *, tenant_id: str) -> dict[str, Any]:
        """One source's status: its state, progress, last run and next scheduled run.

        Raises:
            UnknownSourceError: The tenant has no source of that name.
        """
        cfg = self.source(name, tenant_id)
        runner = await self.runner()
        status: dict[str, Any] = await asyncio.to_thread(runner.state, tenant_id, name)
        return {**status, "source": name, "kind": cfg.kind, "every_s": cfg.every_s}

    async def statuses(self, *, tenant_id: str) -> list[dict[str, Any]]:
        """The status of each of the tenant's sources."""
        return [await self.status(c.name, tenant_id=tenant_id) for c in self.sources(tenant_id)]

    async def close(self) -> None:
        """Stop the schedule; running syncs end after their current item (resumed next run)."""
        if self._schedule is not None:
            self._schedule.cancel()
            await asyncio.gather(self._schedule, return_exceptions=True)
        if self._runner is not None:
            self._runner.stop.set()
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=_STOP_WAIT_S)
        self._pool.shutdown(wait=False, cancel_futures=True)
