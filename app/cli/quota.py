"""``ragent quota show|reset``: quota usage of a tenant and its users, and resetting it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.common import CliError, ConfigOpt, JsonOpt, print_json
from app.settings import load_settings

if TYPE_CHECKING:  # imported when a command runs: `ragent --help` stays cheap
    from app.server.quotas import Quotas

__all__ = ["register"]

quota_cli = typer.Typer(
    help="Quota usage (server.quota) of a tenant and its users.", no_args_is_help=True
)

TenantOpt = Annotated[str, typer.Option(help="The tenant.")]


async def _with_quotas(config: Path | None, tenant: str, use: Any) -> Any:
    from app.server.api_keys import validate_identity
    from app.server.quota_store import open_usage_store
    from app.server.quotas import Quotas

    try:
        validate_identity("tenant", tenant)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    settings = load_settings(config)
    store = open_usage_store(settings.data_dir, settings.server.redis_url)
    try:
        return await use(Quotas(settings.server.quota, store))
    except OSError as exc:  # Redis down, SQLite unreadable
        raise CliError(f"cannot reach the usage store: {type(exc).__name__}: {exc}") from None
    finally:
        await store.aclose()


@quota_cli.command(name="show")
def show_command(tenant: TenantOpt, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Print the tenant's and its users' requests and tokens in the current period."""

    async def use(quotas: Quotas) -> dict[str, Any]:
        return await quotas.usage(tenant)

    usage: dict[str, Any] = asyncio.run(_with_quotas(config, tenant, use))
    if as_json:
        print_json(usage)
        return
    limits = usage["limits"]
    typer.echo(
        f"tenant {tenant}: {usage['requests']} requests (limit {limits['requests']}), "
        f"{usage['tokens']} tokens (limit {limits['tokens']}) this {usage['period']}; "
        f"renews in {usage['resets_in_s']} s"
    )
    for row in usage["users"]:
        typer.echo(f"  {row['user']}: {row['requests']} requests, {row['tokens']} tokens")


@quota_cli.command(name="reset")
def reset_command(
    tenant: TenantOpt,
    user: Annotated[str | None, typer.Option(help="Only this user of the tenant.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Zero the current period's usage of the tenant and its users (or of one user)."""

    async def use(quotas: Quotas) -> int:
        return await quotas.reset(tenant, user)

    reset: int = asyncio.run(_with_quotas(config, tenant, use))
    typer.echo(f"reset {reset} counters of {'user ' + repr(user) if user else 'tenant'} {tenant!r}")


def register(cli: typer.Typer) -> None:
    """Add ``quota show`` and ``quota reset`` to the ``ragent`` command."""
    cli.add_typer(quota_cli, name="quota")
