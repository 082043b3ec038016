"""``ragent memory list|delete``: a user's long-term memories (and notes), on the CLI."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from app.cli.common import CliError
from app.memory.namespaces import Kind
from app.settings import Settings, load_settings

if TYPE_CHECKING:
    from app.memory.longterm import Memory, MemoryBank

__all__ = ["register"]

T = TypeVar("T")

memory_app = typer.Typer(
    name="memory",
    help="List or delete what ragent remembers about a user.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

UserOpt = Annotated[str, typer.Option("--user", help="Whose memories.")]
NotesOpt = Annotated[bool, typer.Option("--notes", help="Notes saved by create_note instead.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Settings YAML.")]


def _run(settings: Settings, kind: Kind, job: Callable[[MemoryBank], Awaitable[T]]) -> T:
    """Open the configured store and run ``job`` on the user's memories or notes."""
    from app.memory.longterm import MemoryBank
    from app.memory.store import open_store
    from app.retrieval.embedding.embedder import make_embedder

    async def main() -> T:
        # Listing and deleting embed nothing: the embedding model is never loaded here.
        async with open_store(settings, make_embedder(settings.embed)) as store:
            return await job(MemoryBank(store, settings.memory, kind))

    return asyncio.run(main())


def _line(memory: Memory) -> str:
    title = f"[{memory.extra['title']}] " if memory.extra and "title" in memory.extra else ""
    day = memory.updated_at.date().isoformat()
    return f"{memory.id}  {day}  {memory.origin:<8}  {title}{memory.text}"


@memory_app.command(name="list")
def list_command(
    user: UserOpt = "local",
    notes: NotesOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List a user's memories, newest first: id, date, origin and text."""
    settings = load_settings(config)
    kind: Kind = "notes" if notes else "memories"
    found = _run(settings, kind, lambda bank: bank.list(settings.tenant_id, user))
    if as_json:
        sys.stdout.write(json.dumps({kind: [m.as_dict() for m in found]}, ensure_ascii=False))
        sys.stdout.write("\n")
        return
    if not found:
        typer.echo(f"no {kind} for user {user!r}")
    for memory in found:
        typer.echo(_line(memory))


@memory_app.command(name="delete")
def delete_command(
    memory_id: Annotated[str | None, typer.Argument(help="The id shown by `memory list`.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Delete all of them.")] = False,
    user: UserOpt = "local",
    notes: NotesOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Delete one memory by id, or all of a user's memories with --all."""
    if (memory_id is None) == (not everything):
        raise CliError("give one memory id, or --all")
    settings = load_settings(config)
    kind: Kind = "notes" if notes else "memories"
    tenant = settings.tenant_id
    if everything:
        count = _run(settings, kind, lambda bank: bank.clear(tenant, user))
        typer.echo(f"deleted {count} {kind} of user {user!r}")
        return
    assert memory_id is not None
    if not _run(settings, kind, lambda bank: bank.delete(tenant, user, memory_id)):
        raise CliError(f"user {user!r} has no {kind[:-1] if notes else 'memory'} {memory_id!r}")
    typer.echo(f"deleted {memory_id}")


def register(cli: typer.Typer) -> None:
    """Add ``memory list`` and ``memory delete`` to the ``ragent`` command."""
    cli.add_typer(memory_app, name="memory")
