"""The ``ragent`` command: ingest, ask, chat, serve."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeAlias

import typer

from app.cli_approve import EXIT_WAITING, DecisionOpt, explain_waiting, settle
from app.cli_approve import register as register_approval_commands
from app.cli_eval import register as register_eval_commands
from app.cli_keys import register as register_key_commands
from app.cli_memory import register as register_memory_commands
from app.context import Context
from app.service import Answer, QuestionError, ask, new_thread_id, stream_ask
from app.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from app.state import AgentState, InputState

    Agent: TypeAlias = CompiledStateGraph[AgentState, Context, InputState, AgentState]

__all__ = ["main"]

cli = typer.Typer(
    name="ragent",
    help="A RAG + tool-calling agent on LangGraph. Offline by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Settings YAML (default: $RAGENT_CONFIG or configs/default.yaml)."
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


def _groups(raw: str) -> list[str]:
    return sorted({g.strip() for g in raw.split(",") if g.strip()})


def _settings(config: Path | None, *, server: bool = False) -> Settings:
    """Load settings, then set up logs and traces from them."""
    from app.observability.setup import configure

    settings = load_settings(config)
    configure(settings, server=server)
    return settings


def _print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def _print_answer(answer: Answer, *, shown: bool = False) -> None:
    if not shown:
        typer.echo(answer.answer)
    if answer.citations:
        typer.echo("\nSources:")
        for c in answer.citations:
            typer.echo(f"  [{c['label']}] {c['source']} (characters {c['span'][0]}-{c['span'][1]})")


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    as_json: JsonOpt = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: settings).")] = None,
    acl: Annotated[str, typer.Option(help="Comma-separated groups allowed to read.")] = "",
    workers: Annotated[
        int | None, typer.Option(min=0, help="Parser processes (default: settings).")
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove documents whose source disappeared.")
    ] = False,
    text_fields: Annotated[
        str, typer.Option(help="JSONL/CSV: comma-separated fields that form the text.")
    ] = "",
    id_field: Annotated[str | None, typer.Option(help="JSONL/CSV: the record id field.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest PDF, DOCX, HTML, Markdown, text and JSONL/CSV records; unchanged files are skipped.

    Exit codes: 0 all ingested, 1 some files failed (reported), 2 bad input.
    """
    from app.ingest.factory import build_ingestor
    from app.ingest.loaders import RecordSpec
    from app.ingest.pipeline import IngestOptions
    from app.resources import build_resources

    settings = _settings(config)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or directory: {missing[0]}")
    records = (
        RecordSpec(text_fields=tuple(_groups(text_fields)), id_field=id_field)
        if text_fields
        else None
    )
    ingestor = build_ingestor(build_resources(settings))
    options = IngestOptions(
        tenant_id=tenant or settings.tenant_id,
        acl=tuple(_groups(acl)),
        workers=settings.ingest.workers if workers is None else workers,
        prune=prune,
        records=records,
        progress=None if not as_json else False,
    )
    report = ingestor.ingest(paths, options)
    if as_json:
        _print_json(report.as_dict())
    else:
        typer.echo(
            f"{report.documents} documents ({report.chunks} chunks) indexed, "
            f"{report.unchanged} unchanged, {report.duplicates} duplicates, "
            f"{report.near_empty} near-empty, {report.pruned} pruned, "
            f"{report.skipped} unsupported skipped, {len(report.failed)} failed "
            f"in {report.seconds:.1f} s"
        )
        for failure in report.failed:
            typer.echo(f"  failed: {failure['source']}: {failure['reason']}", err=True)
    if report.failed:
        raise typer.Exit(1)


@asynccontextmanager
async def _agent(settings: Settings) -> AsyncIterator[Agent]:
    """Build the engines once and open the checkpointer for a whole CLI command."""
    from app.graphs.agent import compile_agent
    from app.memory.checkpoint import open_checkpointer
    from app.memory.store import open_store
    from app.resources import build_resources, use_resources

    with use_resources(build_resources(settings)) as resources:
        async with (
            open_checkpointer(settings) as saver,
            open_store(settings, resources.embedder) as store,
        ):
            try:
                yield compile_agent(saver, store)
            finally:
                if resources.models is not None:
                    await resources.models.aclose()  # the chat models' connection pools


async def _ask(
    settings: Settings,
    question: str,
    context: Context,
    thread_id: str,
    *,
    stream: bool,
    decision: bool | None = None,
    interactive: bool = False,
) -> Answer:
    async with _agent(settings) as agent:
        answer = await _turn(agent, settings, question, context, thread_id, stream=stream)
        # A streamed turn printed its first part; each resumed part is printed here.
        return await settle(
            agent,
            answer,
            context=context,
            thread_id=thread_id,
            decision=decision,
            interactive=interactive,
            show=_print_answer if stream else (lambda _: None),
        )


async def _turn(
    agent: Agent, settings: Settings, q: str, ctx: Context, thread_id: str, *, stream: bool
) -> Answer:
    """One turn; with ``stream``, the reply is printed token by token, then the sources."""
    from app.observability.tracing import span

    with span("cli.turn"):  # the root span: the turn's node and engine spans share its trace
        return await _run_turn(agent, settings, q, ctx, thread_id, stream=stream)


async def _run_turn(
    agent: Agent, settings: Settings, q: str, ctx: Context, thread_id: str, *, stream: bool
) -> Answer:
    limit = settings.limits.max_input_chars
    if not stream:
        return await ask(agent, q, context=ctx, thread_id=thread_id, max_chars=limit)
    shown, message_id, answer = "", "", Answer(answer="")
    async for event in stream_ask(agent, q, context=ctx, thread_id=thread_id, max_chars=limit):
        if isinstance(event, Answer):
            answer = event
            continue
        if event.restart and shown:
            sys.stdout.write("\n[the model stopped mid-answer; another model answers]\n")
            shown = ""
        elif event.message_id != message_id and shown:
            sys.stdout.write("\n")
            shown = ""
        message_id = event.message_id
        sys.stdout.write(event.text)
        sys.stdout.flush()
        shown += event.text
    if " ".join(answer.answer.split()) != " ".join(shown.split()):
        # The output checks changed the reply (redaction, unknown labels, size cap).
        sys.stdout.write(f"\n[after output checks]\n{answer.answer}" if shown else answer.answer)
    sys.stdout.write("\n")
    _print_answer(answer, shown=True)
    return answer


def _context(
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
    try:
        return Context(
            tenant_id=settings.tenant_id,
            user_id=user,
            acl_groups=_groups(groups),
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=list(stop or []),
            seed=seed,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


@cli.command(name="ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
    user: UserOpt = "local",
    groups: GroupsOpt = "",
    as_json: JsonOpt = False,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    stop: StopOpt = None,
    seed: SeedOpt = None,
    stream: StreamOpt = True,
    decision: DecisionOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ask one question and print a cited answer, streamed as the model writes it.

    With --json (never streamed): {"answer", "citations": [{"label", "source",
    "doc_id", "chunk_id", "span"}], "thread_id", "refused"}, plus "approvals" when tool
    calls wait for approval (exit code 3; continue with ``ragent resume``).
    """
    if not question.strip():
        raise CliError("the question is empty")
    settings = _settings(config)
    context = _context(
        settings,
        user,
        groups,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
    )
    thread_id = thread or new_thread_id()
    answer = asyncio.run(
        _ask(
            settings,
            question,
            context,
            thread_id,
            stream=stream and not as_json,
            decision=decision,
            interactive=sys.stdin.isatty() and not as_json,
        )
    )
    if as_json:
        _print_json(answer.as_dict())
    else:
        if not (stream and not as_json):
            _print_answer(answer)
        typer.echo(f"\n(thread {answer.thread_id})")
    if answer.approvals:
        if not as_json:
            explain_waiting(answer)
        raise typer.Exit(EXIT_WAITING)


@cli.command()
def chat(
    thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
    user: UserOpt = "local",
    groups: GroupsOpt = "",
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    stop: StopOpt = None,
    seed: SeedOpt = None,
    stream: StreamOpt = True,
    decision: DecisionOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Chat interactively on one thread, replies streamed; an empty line or Ctrl-D ends it.

    Tool calls that need approval are asked about (y/N) unless --approve or --deny is given.
    """
    settings = _settings(config)
    thread_id = thread or new_thread_id()
    context = _context(
        settings,
        user,
        groups,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
    )
    typer.echo(f"thread {thread_id}; an empty line or Ctrl-D quits")
    asyncio.run(_chat(settings, context, thread_id, stream=stream, decision=decision))


async def _chat(
    settings: Settings,
    context: Context,
    thread_id: str,
    *,
    stream: bool,
    decision: bool | None = None,
) -> None:
    async with _agent(settings) as agent:
        while True:
            try:
                question = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return
            if not question.strip():
                return
            try:
                answer = await _turn(agent, settings, question, context, thread_id, stream=stream)
            except QuestionError as exc:
                typer.echo(f"ragent: {exc}", err=True)
                continue
            if not stream:
                _print_answer(answer)
            await settle(
                agent,
                answer,
                context=context,
                thread_id=thread_id,
                decision=decision,
                interactive=True,
                show=_print_answer,
            )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept requests without an API key (unsafe).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Serve the HTTP API with uvicorn; requests need an API key (`ragent keys create`)."""
    import uvicorn

    settings = _settings(config, server=True)  # fail fast on a bad config, before binding
    if config is not None:
        os.environ["RAGENT_CONFIG"] = str(config)
    if no_auth:
        os.environ["RAGENT_SERVER_AUTH"] = "false"
        typer.echo(
            "ragent: warning: --no-auth: every request is accepted without a key, as one "
            "anonymous user; never expose this server",
            err=True,
        )
    uvicorn.run(  # log_config None: uvicorn's records go through our (JSON) logging
        "app.server.app:app",
        host=host,
        port=port,
        log_config=None,
        log_level=(settings.observability.log_level or "INFO").lower(),
        timeout_graceful_shutdown=5,
    )


register_eval_commands(cli)
register_approval_commands(cli)
register_memory_commands(cli)
register_key_commands(cli)


def main() -> None:
    """Entry point: run the CLI, turning known errors into one line and exit code 2."""
    try:
        cli()
    except (CliError, SettingsError, QuestionError, FileNotFoundError) as exc:
        typer.echo(f"ragent: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback dump
        if os.environ.get("RAGENT_DEBUG"):
            raise
        typer.echo(
            f"ragent: error: {type(exc).__name__}: {exc} (set RAGENT_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)
