"""Everything the API's routes share, opened once per process by the app's lifespan."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from limits import parse

from app.resources import Resources, get_resources
from app.server.api_keys import KeyStore, open_key_store
from app.server.api_metrics import Metrics
from app.server.auth import Authenticator
from app.server.oidc import TokenVerifier
from app.server.quota_store import open_usage_store
from app.server.quotas import Quotas
from app.server.runs.records import open_records
from app.server.runs.streams import RunManager
from app.server.shared_state import SharedState, open_state
from app.server.thread_index import ThreadIndex, forget_key, open_index
from app.settings import Settings
from app.sources.schedule import SourceSyncs

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from app.context import Context
    from app.server.ingestion.jobs import JobManager
    from app.server.ingestion.queued import QueuedJobs
    from app.state import AgentState, InputState

__all__ = ["Services", "open_services"]

log = logging.getLogger("ragent.server")


@dataclass(kw_only=True)
class Services:
    """The process's engines, stores and managers, as the routes use them."""

    settings: Settings
    resources: Resources
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState]
    checkpointer: BaseCheckpointSaver[str]
    store: BaseStore
    keys: KeyStore | None
    auth: Authenticator
    state: SharedState
    threads: ThreadIndex
    runs: RunManager
    jobs: JobManager | QueuedJobs
    """Runs ingestion jobs in this process, or queues them for ``ragent worker``."""
    metrics: Metrics
    quotas: Quotas
    sources: SourceSyncs
    """The configured sources' scheduled and triggered syncs."""
    interval_s: float
    """Seconds between two tokens of a key's bucket."""
    burst: int
    """Tokens a key's bucket holds."""


async def _retain(services: Services) -> None:
    """Prune checkpoints and delete idle threads every ``checkpoint.retention.interval_s``."""
    from app.memory.retention import run_periodically

    retention = services.settings.checkpoint.retention

    async def claim() -> bool:  # one process of all runs each pass
        return await services.state.set(
            "retention:pass", "1", retention.interval_s * 0.9, only_new=True
        )

    await run_periodically(
        services.checkpointer,
        retention,
        forget=functools.partial(forget_key, services.threads),
        claim=claim,
    )


def _jobs(
    settings: Settings, resources: Resources, state: SharedState, metrics: Metrics
) -> JobManager | QueuedJobs:
    from app.server.ingestion.jobs import JobManager

    server = settings.server
    if not server.ingest_queue or server.redis_url is None:
        return JobManager(settings, resources, state, metrics)
    from app.server.ingestion.queue import IngestQueue
    from app.server.ingestion.queued import QueuedJobs

    queue = IngestQueue(
        server.redis_url,
        claim_idle_s=server.ingest_claim_idle_s,
        max_attempts=server.ingest_max_attempts,
    )
    return QueuedJobs(settings, state, queue)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the checkpointer, the long-term store and the API's own state."""
    from app.graphs.agent import compile_agent
    from app.memory.checkpoint import open_checkpointer
    from app.memory.store import open_store
    from app.startup_gc import freeze_startup_heap

    server = settings.server
    # ``langgraph dev`` starts flagging blocking calls at this lifespan's first await, so
    # the engines (a blocking build) are built before anything awaits.
    resources = get_resources()
    stack = AsyncExitStack()
    store = await stack.enter_async_context(open_store(settings, resources.embedder))
    saver = await stack.enter_async_context(open_checkpointer(settings))
    # Load the embedding model now, off the event loop: the first request must not wait.
    await asyncio.to_thread(resources.embedder.embed_query, "warm up")
    # SQLite files are created off the event loop (``langgraph dev`` flags blocking calls).
    keys = None
    tokens = TokenVerifier(server.oidc, tenant_id=settings.tenant_id) if server.oidc else None
    if server.auth:
        keys = await asyncio.to_thread(open_key_store, settings.data_dir, server.redis_url)
    if not server.auth:
        log.warning("auth is off: every request is served as one anonymous user")
    state = open_state(server.redis_url)
    threads = await asyncio.to_thread(open_index, settings.data_dir, server.redis_url)
    rate = parse(server.rate_limit)
    metrics = Metrics()
    usage = await asyncio.to_thread(open_usage_store, settings.data_dir, server.redis_url)
    quotas = Quotas(server.quota, usage, refusals=metrics.quota_refusals)
    records = await asyncio.to_thread(open_records, settings.data_dir, state, server.redis_url)
    runs = RunManager(
        state, ttl_s=server.events_ttl_s, silence_s=server.request_timeout_s, records=records
    )
    jobs = _jobs(settings, resources, state, metrics)
    sources = SourceSyncs.of(resources)
    try:
        async with stack:
            services = Services(
                settings=settings,
                resources=resources,
                agent=compile_agent(saver, store),
                checkpointer=saver,
                store=store,
                keys=keys,
                auth=Authenticator(keys, tenant_id=settings.tenant_id, tokens=tokens),
                state=state,
                threads=threads,
                runs=runs,
                jobs=jobs,
                metrics=metrics,
                quotas=quotas,
                sources=sources,
                interval_s=rate.get_expiry() / rate.amount,
                burst=server.rate_burst or rate.amount,
            )
            # Last, once everything is loaded: later full collections skip the start-up heap.
            metrics.frozen_objects.set(freeze_startup_heap())
            retention = asyncio.create_task(_retain(services), name="retention")
            tasks = [retention]
            if metrics.process is not None:  # several workers: each writes its own figures
                tasks.append(asyncio.create_task(metrics.process.run(), name="process-metrics"))
            sources.start()
            try:
                yield services
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await sources.close()
                await runs.close()
                await jobs.close()
    finally:
        await threads.close()
        await records.close()
        await state.close()
        await usage.aclose()
        if keys is not None:
            await keys.aclose()
        if tokens is not None:
            await tokens.aclose()
        if resources.models is not None:
            await resources.models.aclose()
