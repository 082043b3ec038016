"""``ragent keys create|list|revoke``: API keys of the HTTP API."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CliError
from app.server import api_keys
from app.settings import Settings, load_settings

__all__ = ["register"]

keys_app = typer.Typer(
    name="keys",
    help="Create, list or revoke API keys for `ragent serve`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Settings YAML.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _store(settings: Settings) -> api_keys.KeyStore:
    return api_keys.open_key_store(settings.data_dir, settings.server.redis_url)


def _split(raw: str) -> list[str]:
    return sorted({part.strip() for part in raw.split(",") if part.strip()})


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


@keys_app.command(name="create")
def create_command(
    tenant: Annotated[str, typer.Option(help="Tenant whose data the key reaches.")],
    user: Annotated[str, typer.Option(help="User the key acts as.")],
    groups: Annotated[str, typer.Option(help="Comma-separated ACL groups of the user.")] = "",
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: chat (chat, threads, memories), ingest, end_users (a "
            "front end: the request's `user` field or X-Ragent-User header picks the end user "
            "whose memories, threads and rate limit it uses), admin (see and reset the "
            "tenant's quota usage: /v1/quota)."
        ),
    ] = "chat,ingest",
    name: Annotated[str, typer.Option(help="A label shown by `keys list`.")] = "",
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    store = _store(load_settings(config))
    try:
        record, key = api_keys.create(
            store,
            tenant_id=tenant,
            user_id=user,
            groups=_split(groups),
            scopes=_split(scopes),
            name=name,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps({**record.as_dict(), "key": key}) + "\n")
        return
    typer.echo(key)
    typer.echo(
        f"key {record.key_id} for tenant {tenant!r}, user {user!r}: store it now, it is not "
        "shown again",
        err=True,
    )


@keys_app.command(name="list")
def list_command(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List keys: id, tenant, user, groups, scopes, created and revoked times."""
    store = _store(load_settings(config))
    try:
        records = store.list()
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps({"keys": [r.as_dict() for r in records]}) + "\n")
        return
    if not records:
        typer.echo("no keys")
    for r in records:
        state = f"revoked {_when(r.revoked_at)}" if r.revoked_at is not None else "active"
        typer.echo(
            f"{r.key_id}  {r.tenant_id}  {r.user_id}  groups={','.join(r.groups) or '-'}  "
            f"scopes={','.join(r.scopes)}  created {_when(r.created_at)}  {state}"
            + (f"  {r.name}" if r.name else "")
        )


@keys_app.command(name="revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    store = _store(load_settings(config))
    try:
        found = store.revoke(key_id)
    finally:
        store.close()
    if not found:
        raise CliError(f"no key {key_id!r}")
    typer.echo(f"revoked {key_id}")


def register(cli: typer.Typer) -> None:
    """Add ``keys create|list|revoke`` to the ``ragent`` command."""
    cli.add_typer(keys_app, name="keys")
