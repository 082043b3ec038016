"""``ragent eval retrieval`` and ``ragent tune``: retrieval quality on BEIR-format data."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from app.settings import load_settings

if TYPE_CHECKING:
    from app.evals.beir import BeirDataset
    from app.evals.dataset import DatasetsConfig
    from app.evals.runner import EvalRun
    from app.evals.trace import ItemRun
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
        "--config", help="Settings YAML (default: $RAGENT_CONFIG or the 'default' profile)."
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


DatasetsOpt = Annotated[
    Path | None,
    typer.Option(
        "--datasets-config",
        help="Datasets config with corpora and thresholds (default: datasets.yaml next to "
        "the dataset, or one folder up).",
    ),
]


def _datasets_config(path: Path | None, first: Path) -> DatasetsConfig:
    from app.evals.dataset import EvalDataError, default_config_path, load_config

    try:
        return load_config(path if path is not None else default_config_path(first))
    except EvalDataError as exc:
        _fail(str(exc))


def _gate(misses: list[str]) -> None:
    """Exit 1 after naming every missed threshold."""
    if misses:
        for miss in misses:
            typer.echo(f"ragent: threshold missed: {miss}", err=True)
        raise typer.Exit(1)


@eval_app.command("retrieval")
def eval_retrieval(
    beir: BeirOpt,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    datasets_config: DatasetsOpt = None,
) -> None:
    """Index a BEIR set into a temporary store; score bm25, dense and hybrid retrieval.

    Prints nDCG@10, Recall@10, Recall@100 and MRR@10 per mode over the judged queries,
    with the configured engines, embedder and fusion. With --json: {"dataset",
    "documents", "queries", "depth", "hybrid", "rerank", "metrics": {mode: {metric:
    value}}, "seconds"}. Thresholds (``mode.metric``) of the folder's entry in the
    datasets config are checked: exit code 1 names each one missed.
    """
    from app.evals.aggregate import check_thresholds
    from app.evals.retrieval import evaluate_retrieval

    settings = load_settings(config)
    catalog = _datasets_config(datasets_config, beir)
    dataset = _load(beir)
    report = evaluate_retrieval(settings, dataset, progress=False if as_json else None)
    if as_json:
        _print_json(report.as_dict())
    else:
        typer.echo(report.table())
    flat = {
        f"{mode}.{metric}": value
        for mode, values in report.as_dict()["metrics"].items()
        for metric, value in values.items()
    }
    thresholds = catalog.for_dataset(beir.resolve().name).thresholds
    _gate([miss.describe() for miss in check_thresholds(dataset.name, flat, thresholds)])


def _summary(report: TuneReport, out: Path, note: str | None) -> str:
    lines = [
        f"searched {report.searched} fusion parameter sets",
        f"{'dataset':<20}{'queries':>8}{'bm25':>8}{'dense':>8}{'default':>9}{'tuned':>8}{'cv':>8}"
        "  tuned vs the better engine",
    ]
    for s in report.sets:
        cv = "-" if s.cross_validated is None else f"{s.cross_validated:.3f}"
        verdict = "within noise" if s.within_noise else "worse beyond noise"
        lines.append(
            f"{s.name:<20}{s.queries:>8}{s.bm25:>8.3f}{s.dense:>8.3f}{s.default:>9.3f}"
            f"{s.tuned:>8.3f}{cv:>8}  {verdict} ({s.best_single})"
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


def _progress(name: str, run: ItemRun) -> None:
    mark = "error" if run.error else f"{run.seconds:.2f} s"
    typer.echo(f"  {name} {run.id}: {mark}", err=True)


@eval_app.command("answers")
def eval_answers(
    datasets: Annotated[
        list[Path],
        typer.Argument(help="JSONL datasets (evals/datasets/*.jsonl).", show_default=False),
    ],
    as_json: JsonOpt = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write report.md, results.json and charts into DIR."),
    ] = None,
    datasets_config: DatasetsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run datasets through the agent with the configured model; score every answer.

    Scores retrieval on the sources used (recall@10, MRR@10, nDCG@10), citation
    precision, answer F1 and exact match, refusals, tool calls, JSON validity and
    safety (plus an LLM judge when a model is configured). Exit codes: 0 every
    threshold met, 1 a threshold missed (each is named), 2 bad input. With --json:
    the run as one object (what results.json holds).
    """
    from app.evals import langsmith_upload
    from app.evals.dataset import EvalDataError
    from app.evals.report import summary_table, write_report
    from app.evals.runner import load_dataset, run_answers

    settings = load_settings(config)
    catalog = _datasets_config(datasets_config, datasets[0])
    try:
        specs = [load_dataset(path, catalog) for path in datasets]
    except EvalDataError as exc:
        _fail(str(exc))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        _fail("a dataset is named twice")
    if report is not None and report.exists() and not report.is_dir():
        _fail(f"--report must be a folder: {report}")
    client = langsmith_upload.connect(settings.observability)
    tracing = langsmith_upload.tracing(client) if client is not None else nullcontext
    run = run_answers(settings, specs, on_item=None if as_json else _progress, tracing=tracing)
    if client is not None:
        experiments = langsmith_upload.upload(run, client)
        typer.echo(f"ragent: uploaded to LangSmith: {', '.join(experiments)}", err=True)
    if report is not None:
        write_report(run, report)
    if as_json:
        _print_json(run.as_dict())
    else:
        typer.echo(_answers_summary(run, summary_table(run), report))
    _gate([miss.describe() for miss in run.misses])


def _answers_summary(run: EvalRun, table: str, report: Path | None) -> str:
    lines = [table, f"{sum(len(r.items) for r in run.datasets)} questions in {run.seconds:.1f} s"]
    if report is not None:
        lines.append(f"wrote {report}/report.md")
    lines.append(
        "every threshold met" if not run.misses else f"{len(run.misses)} thresholds missed"
    )
    return "\n".join(lines)


def register(cli: typer.Typer) -> None:
    """Add ``eval`` (with ``eval retrieval``) and ``tune`` to the ``ragent`` command."""
    cli.add_typer(eval_app, name="eval")
    cli.command(name="tune")(tune_command)
