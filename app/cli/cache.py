"""``ragent cache stats|clear``: the semantic answer cache's counters, and emptying it."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from app.cli.common import CliError, ConfigOpt, JsonOpt
from app.settings import load_settings

__all__ = ["register", "summarise"]

cache_cli = typer.Typer(help="The semantic answer cache.", no_args_is_help=True)


def summarise(counters: dict[str, float], entries: int) -> dict[str, Any]:
    """The figures ``ragent cache stats`` prints, from the shared counters.

    Args:
        counters: The engine's counters (lookups, each outcome and its seconds, tokens).
        entries: Entries stored now.
    """
    lookups = int(counters.get("lookups", 0))
    hits = int(counters.get("hit", 0))

    def mean_ms(outcomes: tuple[str, ...]) -> float | None:
        count = sum(counters.get(o, 0) for o in outcomes)
        seconds = sum(counters.get(f"{o}_seconds", 0.0) for o in outcomes)
        return round(1000 * seconds / count, 2) if count else None

    misses = ("miss", "near_miss", "stale", "error")
    return {
        "entries": entries,
        "lookups": lookups,
        "hits": hits,
        "hit_rate": round(hits / lookups, 4) if lookups else 0.0,
        "near_misses": int(counters.get("near_miss", 0)),
        "stale": int(counters.get("stale", 0)),
        "errors": int(counters.get("error", 0)),
        "saved_tokens": int(counters.get("saved_tokens", 0)),
        "hit_ms": mean_ms(("hit",)),
        "miss_ms": mean_ms(misses),
    }


def _store(config: Any) -> Any:
    from app.cache import build_store

    settings = load_settings(config)
    return build_store(settings, dim=0)  # dim only shapes a Redis index never made here


@cache_cli.command("stats")
def stats_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print the cache's entries, lookups, hit rate, saved tokens and lookup times."""
    store = _store(config)
    try:
        figures = summarise(store.counters(), store.count())
    except Exception as exc:  # noqa: BLE001 - one line for an engine that is down
        raise CliError(f"cannot read the answer cache: {type(exc).__name__}: {exc}") from None
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    for key, value in figures.items():
        typer.echo(f"{key}: {'-' if value is None else value}")


@cache_cli.command("clear")
def clear_command(config: ConfigOpt = None) -> None:
    """Drop every stored answer and reset the counters."""
    store = _store(config)
    try:
        removed = store.clear()
    except Exception as exc:  # noqa: BLE001 - one line for an engine that is down
        raise CliError(f"cannot clear the answer cache: {type(exc).__name__}: {exc}") from None
    finally:
        store.close()
    typer.echo(f"removed {removed} answers")


def register(cli: typer.Typer) -> None:
    """Add ``cache stats`` and ``cache clear`` to the ``ragent`` command."""
    cli.add_typer(cache_cli, name="cache")
