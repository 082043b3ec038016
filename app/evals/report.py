"""The report of an answers run: ``results.json``, ``report.md`` and two PNG charts."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never a display, whatever the environment says

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from app.evals.aggregate import METRIC_ORDER  # noqa: E402
from app.evals.runner import EvalRun  # noqa: E402

__all__ = ["FILES", "summary_table", "write_report"]

FILES = ("report.md", "results.json", "scores_by_tag.png", "latency.png")
"""What :func:`write_report` writes into its folder."""


def _metrics(run: EvalRun) -> list[str]:
    return [m for m in METRIC_ORDER if any(m in r.metrics for r in run.datasets)]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def summary_table(run: EvalRun) -> str:
    """Datasets by metrics, as a Markdown table (also what the console shows)."""
    metrics = _metrics(run)
    lines = [
        "| dataset | items | " + " | ".join(metrics) + " | p50 s | p95 s | passed |",
        "|---|---|" + "---|" * len(metrics) + "---|---|---|",
    ]
    for result in run.datasets:
        cells = " | ".join(_cell(result.metrics.get(m)) for m in metrics)
        verdict = "yes" if not result.misses else "**no**"
        lines.append(
            f"| {result.name} | {len(result.items)} | {cells} | {result.latency['p50']:.2f} | "
            f"{result.latency['p95']:.2f} | {verdict} |"
        )
    return "\n".join(lines)


def _thresholds(run: EvalRun) -> list[str]:
    lines = ["| dataset | metric | value | threshold | passed |", "|---|---|---|---|---|"]
    for result in run.datasets:
        missed = {m.metric for m in result.misses}
        for metric, floor in result.thresholds.items():
            value = result.metrics.get(metric)
            shown = "not measured" if value is None else f"{value:.3f}"
            ok = "**no**" if metric in missed else "yes"
            lines.append(f"| {result.name} | {metric} | {shown} | {floor:.3f} | {ok} |")
    return lines


def _failures(run: EvalRun) -> list[str]:
    lines: list[str] = []
    for result in run.datasets:
        for item in result.items:
            scores = result.scores[item.id]
            low = {m: v for m, v in scores.items() if m in result.thresholds and v < 0.5}
            error = result.runs[item.id].error
            if low or error:
                what = error or ", ".join(f"{m} {v:.2f}" for m, v in low.items())
                lines.append(f"- `{result.name}` `{item.id}`: {what}")
    return lines or ["None: every item scored at least 0.5 on every metric with a threshold."]


def _markdown(run: EvalRun) -> str:
    verdict = "passed" if not run.misses else f"FAILED ({len(run.misses)} thresholds missed)"
    judge = "an LLM judge (the configured model) and " if run.judge else ""
    return "\n".join(
        [
            "# ragent answer evaluation",
            "",
            f"Model `{run.model}`, started {run.started}, {run.seconds:.1f} s: **{verdict}**.",
            f"Scored by {judge}offline checks.",
            "",
            "## Scores",
            "",
            summary_table(run),
            "",
            "## Thresholds",
            "",
            *_thresholds(run),
            "",
            "## Scores by tag",
            "",
            "![scores by tag](scores_by_tag.png)",
            "",
            "## Latency",
            "",
            "![latency](latency.png)",
            "",
            "## Items below 0.5 on a metric with a threshold",
            "",
            *_failures(run),
            "",
        ]
    )


def _tag_chart(run: EvalRun, path: Path) -> None:
    rows = [(f"{r.name}:{tag}", values) for r in run.datasets for tag, values in r.by_tag.items()]
    metrics = _metrics(run)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    width = 0.8 / max(1, len(metrics))
    for i, metric in enumerate(metrics):
        xs = [j + i * width for j in range(len(rows))]
        ax.bar(xs, [values.get(metric, 0.0) for _, values in rows], width, label=metric)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
    ax.set_xticklabels([name for name, _ in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean score")
    ax.set_title("Scores by tag")
    if metrics:
        ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latency_chart(run: EvalRun, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for result in run.datasets:
        seconds = [r.seconds for r in result.runs.values()]
        ax.hist(seconds, bins=min(20, max(1, len(seconds))), alpha=0.6, label=result.name)
    ax.set_xlabel("seconds per question")
    ax.set_ylabel("questions")
    ax.set_title("Latency distribution")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run: EvalRun, folder: Path) -> list[Path]:
    """Write the report files into ``folder`` (created if needed).

    Returns:
        The written paths, in the order of :data:`FILES`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in FILES]
    paths[0].write_text(_markdown(run), encoding="utf-8")
    paths[1].write_text(json.dumps(run.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    _tag_chart(run, paths[2])
    _latency_chart(run, paths[3])
    return paths
