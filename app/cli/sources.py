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
    """Sync one source now and print its report (one JSON object)."""
    import sqlalchemy.exc

    from app.resources import build_resources
    from app.sources.configured import configured_source, source_settings
    from app.sources.factory import build_source_sync
    from app.sources.sql import SqlSourceError
    from app.sources.sync import SyncBusyError

    settings = settings_for(config)
    cfg = source_settings(settings, name)
    connector = configured_source(cfg, data_dir=settings.data_dir)
    sync = build_source_sync(build_resources(settings))
    try:
        report = sync.sync(connector, tenant_id=cfg.tenant_id or settings.tenant_id, full=full)
    except SyncBusyError as exc:
        raise CliError(str(exc)) from None
    except (sqlalchemy.exc.SQLAlchemyError, SqlSourceError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(f"source {name!r}: {type(exc).__name__}: {reason}") from None
    print_json(report.as_dict())


@sources_cli.command("status")
def status_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print each source's last finished sync and its cursor."""
    from app.sources.cursors import CursorStore

    settings = settings_for(config)
    store = CursorStore(settings.data_dir / "sources.sqlite")
    rows: list[dict[str, object]] = []
    for cfg in settings.sources:
        state = store.get(cfg.tenant_id or settings.tenant_id, cfg.name)
        rows.append(
            {
                "name": cfg.name,
                "synced_at": (
                    dt.datetime.fromtimestamp(state.updated_at, dt.UTC).isoformat()
                    if state
                    else None
                ),
                "cursor": state.cursor if state else None,
                "last_result": state.last_result if state else None,
            }
        )
    if as_json:
        print_json({"sources": rows})
        return
    for row in rows:
        result = row["last_result"] or {}
        assert isinstance(result, dict)
        typer.echo(
            f"{row['name']}\tsynced {row['synced_at'] or 'never'}\tcursor {row['cursor']}"
            f"\tindexed {result.get('indexed', '-')} deleted {result.get('deleted', '-')}"
        )


def register(cli: typer.Typer) -> None:
    """Add ``sources list|sync|status`` to the ``ragent`` command."""
    cli.add_typer(sources_cli, name="sources")
