"""``ragent ingest``: index files, folders and records; unchanged files are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CliError, ConfigOpt, JsonOpt, parse_groups, print_json, settings_for

__all__ = ["register"]


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

    settings = settings_for(config)
    from app.ingest.scheduling import shown, utf8_name

    undecodable = [shown(p) for p in paths if not utf8_name(str(p))]
    if undecodable:
        raise CliError(f"the path is not UTF-8 (shown escaped): {undecodable[0]}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or directory: {missing[0]}")
    records = (
        RecordSpec(text_fields=tuple(parse_groups(text_fields)), id_field=id_field)
        if text_fields
        else None
    )
    ingestor = build_ingestor(build_resources(settings))
    options = IngestOptions(
        tenant_id=tenant or settings.tenant_id,
        acl=tuple(parse_groups(acl)),
        workers=settings.ingest.workers if workers is None else workers,
        prune=prune,
        records=records,
        progress=None if not as_json else False,
    )
    report = ingestor.ingest(paths, options)
    if as_json:
        print_json(report.as_dict())
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


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to the ``ragent`` command."""
    app.command()(ingest)
