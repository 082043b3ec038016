"""``ragent eval retrieval`` and ``ragent tune``: retrieval quality on BEIR-format data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from app.settings import load_settings

if TYPE_CHECKING:
    from app.evals.beir import BeirDataset
    from app.evals.tune import TuneReport

__all__ = ["register"]

eval_app = typer.Typer(
    name="eval",
    help="Measure ragent on benchmark data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

BeirOpt = Annotated[
    Path,
    typer.Option(
        "--beir",
        help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Settings YAML (default: $RAGENT_CONFIG or configs/default.yaml)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"ragent: error: {message}", err=True)
    raise typer.Exit(2)


def _load(folder: Path) -> BeirDataset:
    from app.evals.beir import BeirError, load_beir

    try:
        return load_beir(folder)
    except BeirError as exc:
        _fail(str(exc))


def _print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


@eval_app.command("retrieval")
def eval_retrieval(beir: BeirOpt, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Index a BEIR set into a temporary store; score bm25, dense and hybrid retrieval.

    Prints nDCG@10, Recall@10, Recall@100 and MRR@10 per mode over the judged queries,
    with the configured engines, embedder and fusion. With --json: {"dataset",
    "documents", "queries", "depth", "hybrid", "rerank", "metrics": {mode: {metric:
    value}}, "seconds"}.
    """
    from app.evals.retrieval import evaluate_retrieval

    settings = load_settings(config)
    dataset = _load(beir)
    report = evaluate_retrieval(settings, dataset, progress=False if as_json else None)
    if as_json:
        _print_json(report.as_dict())
    else:
        typer.echo(report.table())


def _summary(report: TuneReport, out: Path, note: str | None) -> str:
    lines = [
        f"searched {report.searched} fusion parameter sets",
        f"{'dataset':<20}{'queries':>8}{'bm25':>8}{'dense':>8}{'default':>9}{'tuned':>8}{'cv':>8}",
    ]
    for s in report.sets:
        cv = "-" if s.cross_validated is None else f"{s.cross_validated:.3f}"
        lines.append(
            f"{s.name:<20}{s.queries:>8}{s.bm25:>8.3f}{s.dense:>8.3f}{s.default:>9.3f}"
            f"{s.tuned:>8.3f}{cv:>8}"
        )
    gain = report.tuned_score - report.default_score
    lines += [
        f"default nDCG@10 {report.default_score:.3f}: {report.default.describe()}",
        f"tuned   nDCG@10 {report.tuned_score:.3f} (gain {gain:+.3f}): {report.best.describe()}",
    ]
    held_out = report.cross_validated_score
    if held_out is None:
        lines.append("the tuned score is measured on the queries it was chosen on (optimistic)")
    else:
        lines.append(
            f"{report.folds}-fold cross-validated nDCG@10 {held_out:.3f} "
            f"(gain {held_out - report.default_score:+.3f}); the tuned score is measured on "
            "the queries it was chosen on, this one on held-out queries"
        )
    if note:
        lines.append(note)
    lines.append(f"wrote {out} (use it with --config {out} or RAGENT_CONFIG={out})")
    return "\n".join(lines)


def _comments(report: TuneReport) -> list[str]:
    names = ", ".join(f"{s.name} ({s.queries} queries)" for s in report.sets)
    cv = report.cross_validated_score
    return [
        f"Fusion parameters written by `ragent tune` on {names}.",
        f"Hybrid nDCG@10: default {report.default_score:.4f}, tuned {report.tuned_score:.4f}"
        " (measured on the queries it was tuned on)"
        + ("" if cv is None else f", {report.folds}-fold cross-validated {cv:.4f}")
        + ".",
    ]


def tune_command(
    beir: Annotated[
        list[Path],
        typer.Option(
            "--beir", help="A BEIR folder; repeat to tune for several.", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Config file to write.")] = Path(
        "ragent-tuned.yaml"
    ),
    folds: Annotated[
        int, typer.Option(min=0, help="Folds of cross-validation over queries; 0 or 1: none.")
    ] = 5,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Search the fusion parameters for the best hybrid nDCG@10; write them as a config file.

    Candidates are retrieved once per query at the deepest depth and fused offline for
    every parameter set. The written file is the current configuration with the best
    retrieval.* fusion parameters. With --json: {"default", "tuned", "gain",
    "cross_validated", "datasets", "searched", "config", "note"}.
    """
    from rich.console import Console
    from rich.progress import Progress

    from app.evals.config_file import write_config
    from app.evals.params import FusionParams
    from app.evals.tune import grid, prepare, tune

    settings = load_settings(config)
    if not out.parent.is_dir():
        _fail(f"no such directory for --out: {out.parent}")
    datasets = [_load(folder) for folder in beir]
    show = False if as_json else None
    sets = [prepare(settings, dataset, progress=show) for dataset in datasets]
    default = FusionParams.from_settings(settings.retrieval)
    disable = as_json or not sys.stderr.isatty()
    with Progress(console=Console(stderr=True), disable=disable) as progress:
        task = progress.add_task("tune", total=len(grid(default)))
        report = tune(sets, default, folds=folds, on_step=lambda: progress.advance(task))
    try:
        write_config(settings, report.best, out, comments=_comments(report))
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    note = None
    if settings.rerank.provider != "none":
        note = (
            f"fusion was tuned without the reranker (rerank.provider={settings.rerank.provider}); "
            "scores after reranking differ: check them with `ragent eval retrieval`"
        )
    if as_json:
        _print_json({**report.as_dict(), "config": str(out), "note": note})
    else:
        typer.echo(_summary(report, out, note))


def register(cli: typer.Typer) -> None:
    """Add ``eval`` (with ``eval retrieval``) and ``tune`` to the ``ragent`` command."""
    cli.add_typer(eval_app, name="eval")
    cli.command(name="tune")(tune_command)
