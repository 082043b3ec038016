"""What the ``ragent`` commands share: options, errors, settings, the agent, printing."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeAlias

import typer

from app.answer import Answer
from app.context import Context
from app.settings import Settings, load_settings

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from app.state import AgentState, InputState

    Agent: TypeAlias = CompiledStateGraph[AgentState, Context, InputState, AgentState]

__all__ = [
    "CliError",
    "ConfigOpt",
    "GroupsOpt",
    "JsonOpt",
    "MaxTokensOpt",
    "SeedOpt",
    "StopOpt",
    "StreamOpt",
    "TemperatureOpt",
    "TopPOpt",
    "UserOpt",
    "make_context",
    "open_agent",
    "parse_groups",
    "print_answer",
    "print_json",
    "settings_for",
]

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Settings YAML (default: $RAGENT_CONFIG or the 'default' profile)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
UserOpt = Annotated[str, typer.Option("--user", help="User id; threads and memory are per user.")]
GroupsOpt = Annotated[str, typer.Option("--groups", help="Comma-separated ACL groups of the user.")]
TemperatureOpt = Annotated[float | None, typer.Option(help="Sampling temperature, 0 to 2.")]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling, (0, 1].")]
MaxTokensOpt = Annotated[int | None, typer.Option(help="Most tokens in one model reply.")]
StopOpt = Annotated[list[str] | None, typer.Option(help="A stop sequence (repeatable, up to 4).")]
SeedOpt = Annotated[int | None, typer.Option(help="Sampling seed, where the server supports it.")]
StreamOpt = Annotated[bool, typer.Option("--stream/--no-stream", help="Print tokens as they come.")]


class CliError(Exception):
    """A failure reported as one line on stderr with exit code 2."""


def parse_groups(raw: str) -> list[str]:
    """The distinct, sorted names of a comma-separated list; blanks are dropped."""
    return sorted({g.strip() for g in raw.split(",") if g.strip()})


def settings_for(config: Path | None, *, server: bool = False) -> Settings:
    """Load settings, then set up logs and traces from them."""
    from app.observability.setup import configure

    settings = load_settings(config)
    configure(settings, server=server)
    return settings


def print_json(payload: object) -> None:
    """Write ``payload`` as one JSON line on stdout."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def print_answer(answer: Answer, *, shown: bool = False) -> None:
    """Print an answer (unless ``shown``: already streamed), then its sources."""
    if not shown:
        typer.echo(answer.answer)
    if answer.citations:
        typer.echo("\nSources:")
        for c in answer.citations:
            typer.echo(f"  [{c['label']}] {c['source']} (characters {c['span'][0]}-{c['span'][1]})")


def make_context(
    settings: Settings,
    user: str,
    groups: str,
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    stop: list[str] | None = None,
    seed: int | None = None,
) -> Context:
    """The run context of a command's user and sampling options.

    Raises:
        CliError: An option is out of range.
    """
    try:
        return Context(
            tenant_id=settings.tenant_id,
            user_id=user,
            acl_groups=parse_groups(groups),
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=list(stop or []),
            seed=seed,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


@asynccontextmanager
async def open_agent(settings: Settings) -> AsyncIterator[Agent]:
    """Build the engines once and open the checkpointer for a whole CLI command."""
    from app.graphs.agent import compile_agent
    from app.llm.local.process import alocal_model
    from app.memory.checkpoint import open_checkpointer
    from app.memory.store import open_store
    from app.resources import build_resources, use_resources

    with use_resources(build_resources(settings)) as resources:
        async with (
            alocal_model(settings.llm, settings.data_dir),
            open_checkpointer(settings) as saver,
            open_store(settings, resources.embedder) as store,
        ):
            try:
                yield compile_agent(saver, store)
            finally:
                if resources.models is not None:
                    await resources.models.aclose()  # the chat models' connection pools
