"""The ``ragent`` command: ingest, ask, chat, serve."""

from __future__ import annotations

import gc
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from app.answer import QuestionError
from app.cli.approve import register as register_approval_commands
from app.cli.ask import register as register_ask_commands
from app.cli.cache import register as register_cache_commands
from app.cli.common import CliError, ConfigOpt, settings_for
from app.cli.eval import register as register_eval_commands
from app.cli.ingest import register as register_ingest_commands
from app.cli.keys import register as register_key_commands
from app.cli.memory import register as register_memory_commands
from app.cli.prune import register as register_prune_command
from app.cli.quota import register as register_quota_commands
from app.cli.sources import register as register_source_commands
from app.cli.worker import register as register_worker_command
from app.llm.local.process import LocalModelError, local_model
from app.server.workers.shared_metrics import shared_metrics
from app.settings import SettingsError

__all__ = ["CliError", "cli", "main"]

cli = typer.Typer(
    name="ragent",
    help="A RAG + tool-calling agent on LangGraph. Offline by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        try:
            typer.echo(f"ragent {version('ragent')}")
        except PackageNotFoundError:  # a source tree that was never installed
            typer.echo("ragent (not installed)")
        raise typer.Exit()


@cli.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A RAG + tool-calling agent on LangGraph. Offline by default."""


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept requests without an API key (unsafe).")
    ] = False,
    config: ConfigOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (default server.workers, 1); "
            "more than one needs server.redis_url.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API with uvicorn; requests need an API key (`ragent keys create`)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    if workers is not None:
        os.environ["RAGENT_SERVER_WORKERS"] = str(workers)  # validated with the rest
    settings = settings_for(config, server=True)  # fail fast on a bad config, before binding
    if config is not None:
        os.environ["RAGENT_CONFIG"] = str(config)
    if no_auth:
        os.environ["RAGENT_SERVER_AUTH"] = "false"
        typer.echo(
            "ragent: warning: --no-auth: every request is accepted without a key, as one "
            "anonymous user; never expose this server",
            err=True,
        )
    count = settings.server.workers
    options = uvicorn.Config(
        "app.server.app:app",
        host=host,
        port=port,
        log_config=None,  # uvicorn's records go through our (JSON) logging
        log_level=(settings.observability.log_level or "INFO").lower(),
        timeout_graceful_shutdown=5,
    )
    with local_model(settings.llm, settings.data_dir), shared_metrics(count):
        if count == 1:
            server = uvicorn.Server(options)
            server.run()
            code = 0 if server.started else STARTUP_FAILURE
        else:
            from app.server.workers.supervisor import Supervisor

            # The parent accepts, and deals the connections out in turn.
            code = Supervisor(options, count).run()
    if code:
        raise typer.Exit(code)


register_ingest_commands(cli)
register_ask_commands(cli)
cli.command()(serve)
register_eval_commands(cli)
register_approval_commands(cli)
register_memory_commands(cli)
register_cache_commands(cli)
register_source_commands(cli)
register_key_commands(cli)
register_quota_commands(cli)
register_prune_command(cli)
register_worker_command(cli)


def main() -> None:
    """Entry point: run the CLI, turning known errors into one line and exit code 2."""
    try:
        cli()
    except (
        CliError,
        SettingsError,
        QuestionError,
        FileNotFoundError,
        LocalModelError,
    ) as exc:
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
    finally:
        # The command is done: keep the interpreter's exit from walking the whole heap
        # (the graph, pydantic schemas, the embedder) for cycles it would only free. On a
        # busy machine that walk kept `ragent ask` alive 10 s or more after its answer.
        gc.freeze()
