"""``ragent worker``: queued ingestion jobs (``server.ingest_queue``), scheduled source syncs."""

from __future__ import annotations

import asyncio
import signal

import typer

from app.cli.common import CliError, ConfigOpt, settings_for
from app.settings import Settings

__all__ = ["register", "worker"]


async def _work(settings: Settings) -> None:
    from app.resources import build_resources
    from app.server.ingestion.consumer import IngestWorker
    from app.server.ingestion.queue import IngestQueue
    from app.server.shared_state import open_state
    from app.sources.schedule import SourceSyncs

    server = settings.server
    assert server.redis_url is not None  # checked by the caller
    resources = await asyncio.to_thread(build_resources, settings)
    state = open_state(server.redis_url)
    queue = IngestQueue(
        server.redis_url,
        claim_idle_s=server.ingest_claim_idle_s,
        max_attempts=server.ingest_max_attempts,
    )
    runner = IngestWorker(settings, resources, state, queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # finish the job in hand, then stop
        loop.add_signal_handler(signum, stop.set)
    typer.echo(f"ragent worker {runner.consumer}: waiting for ingestion jobs", err=True)
    sources = SourceSyncs.of(resources)
    sources.start()  # the scheduled source syncs, one at a time per source across processes
    try:
        await runner.run(stop)
    finally:
        await sources.close()
        await runner.close()
        await queue.close()
        await state.close()
        if resources.models is not None:
            await resources.models.aclose()


def worker(config: ConfigOpt = None) -> None:
    """Run the ingestion jobs that `ragent serve` queues (needs server.ingest_queue)."""
    settings = settings_for(config, server=True)
    if not settings.server.ingest_queue:
        raise CliError(
            "server.ingest_queue is off (RAGENT_SERVER_INGEST_QUEUE): `ragent serve` runs "
            "its own ingestion jobs and queues none for a worker"
        )
    asyncio.run(_work(settings))


def register(cli: typer.Typer) -> None:
    """Add ``ragent worker`` to ``cli``."""
    cli.command()(worker)
