"""``ragent sources list|sync|status``: the configured sources and their syncs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from app.cli.common import CliError, ConfigOpt, JsonOpt, print_json, settings_for

__all__ = ["register"]

sources_cli = typer.Typer(
    help="Sources beyond files: databases and web sites.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The source's name in the settings' 'sources'.")]


@sources_cli.command("list")
def list_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print the configured sources (their URLs' passwords hidden)."""
    from sqlalchemy.engine import make_url

    from app.config.sources import SqlSourceSettings

    settings = settings_for(config)
    rows = [
        {
            "name": cfg.name,
            "kind": cfg.kind,
            "url": (
                make_url(cfg.url).render_as_string(hide_password=True)
                if isinstance(cfg, SqlSourceSettings)
                else cfg.sitemap or ", ".join(cfg.seeds)
            ),
            "tenant_id": cfg.tenant_id or settings.tenant_id,
        }
        for cfg in settings.sources
    ]
    if as_json:
        print_json({"sources": rows})
        return
    for row in rows:
        typer.echo(f"{row['name']}\t{row['kind']}\t{row['tenant_id']}\t{row['url']}")


@sources_cli.command("sync")
def sync_command(
    name: NameArg,
    full: Annotated[
        bool, typer.Option("--full", help="Read every item, not only those changed.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Sync one source now and print its report (one JSON object).

    It takes the same lock as the scheduled syncs (Redis with ``server.redis_url``) and
    records its run where ``sources status`` and ``GET /v1/sources`` read it.
    """
    from app.resources import build_resources
    from app.sources.configured import settings_source, source_settings
    from app.sources.factory import build_runner

    settings = settings_for(config)
    cfg = source_settings(settings, name)
    connector = settings_source(settings, cfg)
    runner = build_runner(build_resources(settings))
    tenant = cfg.tenant_id or settings.tenant_id
    lock = runner.claim(tenant, name)
    if lock is None:
        raise CliError(f"a sync of source {name!r} is already running")
    run = runner.run(
        connector, tenant_id=tenant, lock=lock, full=full, trigger="cli", every_s=cfg.every_s
    )
    if run["error"]:
        raise CliError(f"source {name!r}: {run['error']}")
    print_json({k: v for k, v in run.items() if k in _REPORT})


_REPORT = ("source", "indexed", "unchanged", "deleted", "chunks", "failed", "cursor", "seconds")


def _when(moment: object) -> str | None:
    if not isinstance(moment, int | float):
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


@sources_cli.command("status")
def status_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print each source's state, last sync (counts, error), next scheduled sync and cursor."""
    from app.sources.factory import cursor_store, status_store
    from app.sources.locks import file_locks, redis_locks

    settings = settings_for(config)
    cursors = cursor_store(settings)
    statuses = status_store(settings)
    if settings.server.redis_url:
        import redis

        locks = redis_locks(redis.Redis.from_url(settings.server.redis_url))
    else:
        locks = file_locks(settings.data_dir)
    rows: list[dict[str, object]] = []
    for cfg in settings.sources:
        tenant = cfg.tenant_id or settings.tenant_id
        state = cursors.get(tenant, cfg.name)
        status = statuses.get(tenant, cfg.name) or {}
        running = locks(tenant, cfg.name).held()
        state_name = status.get("state", "never")
        if running:
            state_name = "running"
        elif state_name == "running":
            state_name = "interrupted"  # its process died mid-sync (as GET /v1/sources says)
        rows.append(
            {
                "name": cfg.name,
                "state": state_name,
                "synced_at": _when(status.get("finished_at") or (state and state.updated_at)),
                "next_run_at": _when(status.get("next_run_at")),
                "cursor": state.cursor if state else None,
                "progress": status.get("progress") if running else None,
                "last_result": status.get("last_result") or (state and state.last_result),
            }
        )
    if as_json:
        print_json({"sources": rows})
        return
    for row in rows:
        result = row["last_result"] or {}
        assert isinstance(result, dict)
        error = f"\terror {result['error']}" if result.get("error") else ""
        typer.echo(
            f"{row['name']}\t{row['state']}\tsynced {row['synced_at'] or 'never'}"
            f"\tnext {row['next_run_at'] or '-'}\tcursor {row['cursor']}"
            f"\tindexed {result.get('indexed', '-')} deleted {result.get('deleted', '-')}{error}"
        )


def register(cli: typer.Typer) -> None:
    """Add ``sources list|sync|status`` to the ``ragent`` command."""
    cli.add_typer(sources_cli, name="sources")
