"""``ragent prune``: one retention sweep of the checkpoints, as ``ragent serve`` runs hourly."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import CliError
from app.settings import Settings, load_settings

if TYPE_CHECKING:  # the checkpointer's libraries load only when the command runs
    from app.memory.retention import SweepReport

__all__ = ["register"]


async def _sweep(settings: Settings, *, before: float | None) -> SweepReport:
    from app.memory.checkpoint import open_checkpointer
    from app.memory.retention import sweep
    from app.server.thread_index import forget_key, open_index

    retention = settings.checkpoint.retention
    if before is not None:  # idle since before that time: a TTL measured from now
        retention = retention.model_copy(update={"thread_ttl_s": 1e-9})
    index = await asyncio.to_thread(open_index, settings.data_dir, settings.server.redis_url)
    try:
        async with open_checkpointer(settings) as saver:
            return await sweep(
                saver, retention, now=before, forget=functools.partial(forget_key, index)
            )
    finally:
        await index.close()


def prune_command(
    keep: Annotated[
        int | None,
        typer.Option(min=2, help="Checkpoints kept per thread (default: checkpoint.retention)."),
    ] = None,
    ttl: Annotated[
        float | None,
        typer.Option(min=0.001, help="Delete threads idle this many seconds (default: setting)."),
    ] = None,
    before: Annotated[
        float | None,
        typer.Option(help="Delete threads idle since before this Unix time (instead of --ttl)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Settings YAML.")] = None,
) -> None:
    """Prune old checkpoints and delete idle threads (with their entry in the thread list)."""
    if ttl is not None and before is not None:
        raise CliError("give --ttl or --before, not both")
    settings = load_settings(config)
    retention = settings.checkpoint.retention
    changes: dict[str, float | int] = {}
    if keep is not None:
        changes["keep_checkpoints"] = keep
    if ttl is not None:
        changes["thread_ttl_s"] = ttl
    if changes:
        retention = retention.model_copy(update=changes)
        settings = settings.model_copy(
            update={"checkpoint": settings.checkpoint.model_copy(update={"retention": retention})}
        )
    report = asyncio.run(_sweep(settings, before=before))
    if as_json:
        out = {"threads": report.threads, "pruned": report.pruned, "deleted": len(report.deleted)}
        sys.stdout.write(json.dumps(out) + "\n")
        return
    typer.echo(
        f"{report.threads} threads: {report.pruned} pruned, {len(report.deleted)} idle deleted"
    )


def register(cli: typer.Typer) -> None:
    """Add ``prune`` to the ``ragent`` command."""
    cli.command(name="prune")(prune_command)
