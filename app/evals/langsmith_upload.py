"""Upload an answers run to LangSmith: the dataset, an experiment with every score, traces.

Only used when ``LANGSMITH_API_KEY`` is set; otherwise nothing here runs and nothing
touches the network. ``LANGSMITH_ENDPOINT`` picks the server (LangSmith's own default
otherwise), as the ``langsmith`` client reads it.

What is sent: the dataset file's items as examples (question, reference, gold document
ids, ``must_refuse``, tags), uploaded on purpose since an experiment needs them, so an
eval dataset must be fit to leave the machine; each score as feedback (metric and
number); the experiment's metadata (model, judge, start time). The runs, those of the
graph, the experiment's and the judge's model calls, pass the same redaction as every run
(:mod:`app.observability.langsmith`): names, timings and allowlisted attributes, no
answer or document text, unless ``observability.langsmith_content`` is ``full``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from app.config.observability import LangSmithContent, ObservabilitySettings
from app.evals.aggregate import DatasetResult

if TYPE_CHECKING:
    from langsmith import Client

    from app.evals.runner import EvalRun

__all__ = [
    "PROJECT",
    "connect",
    "dataset_name",
    "enabled",
    "make_client",
    "recorded_scores",
    "tracing",
    "upload",
]

PROJECT = "ragent-eval"
"""The LangSmith project the graph runs are traced into."""


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether LangSmith is configured (``LANGSMITH_API_KEY`` is set and not empty)."""
    return bool((os.environ if env is None else env).get("LANGSMITH_API_KEY", "").strip())


def make_client(
    env: Mapping[str, str] | None = None, *, content: LangSmithContent = "redacted"
) -> Client:
    """A LangSmith client for ``LANGSMITH_ENDPOINT`` (if set) with ``LANGSMITH_API_KEY``.

    Args:
        env: The environment (``os.environ`` when None).
        content: ``redacted``: its runs carry no question, document or answer text
            (:func:`app.observability.run_allowlist.redact_run`); ``full``: everything.
    """
    from app.observability.langsmith import make_client as langsmith_client

    env = os.environ if env is None else env
    return langsmith_client(
        content, api_url=env.get("LANGSMITH_ENDPOINT") or None, api_key=env["LANGSMITH_API_KEY"]
    )


def connect(settings: ObservabilitySettings, env: Mapping[str, str] | None = None) -> Client | None:
    """Set up LangSmith for an answers run; the upload client when a key is set, else None.

    The process's client is set up too (:func:`app.observability.langsmith.setup_langsmith`),
    so that runs traced outside the graph's (the judge's model calls, with
    ``LANGSMITH_TRACING=true``) are redacted like the rest.
    """
    from app.observability.langsmith import setup_langsmith

    setup_langsmith(settings, env)
    return make_client(env, content=settings.langsmith_content) if enabled(env) else None


def tracing(client: Client, project: str = PROJECT) -> Callable[[], AbstractContextManager[Any]]:
    """A context-manager factory that traces the graph runs inside it to ``project``."""

    @contextmanager
    def trace() -> Iterator[None]:
        from langchain_core.tracers.context import tracing_v2_enabled

        with tracing_v2_enabled(project_name=project, client=client):
            yield
        client.flush()

    return trace


def dataset_name(result: DatasetResult) -> str:
    """``ragent-<file stem>-<digest of the items>``: a changed dataset is a new one."""
    items = json.dumps([i.model_dump(mode="json") for i in result.items], sort_keys=True)
    digest = hashlib.sha256(items.encode()).hexdigest()[:10]
    return f"ragent-{result.name.rsplit('.', 1)[0]}-{digest}"


def _ensure_dataset(client: Client, result: DatasetResult) -> str:
    name = dataset_name(result)
    if client.has_dataset(dataset_name=name):
        return name
    dataset = client.create_dataset(name, description=f"ragent eval answers: {result.name}")
    client.create_examples(
        dataset_id=dataset.id,
        examples=[
            {
                "inputs": {"id": item.id, "question": item.question},
                "reference_outputs": {
                    "reference": item.reference,
                    "gold_docs": item.gold_docs,
                    "must_refuse": item.must_refuse,
                },
                "metadata": {"tags": item.tags},
            }
            for item in result.items
        ],
    )
    return name


def recorded_scores(outputs: dict[str, Any]) -> dict[str, Any]:
    """The evaluator: the scores this run recorded for the example, one result each."""
    return {"results": [{"key": k, "score": v} for k, v in outputs["scores"].items()]}


def upload(run: EvalRun, client: Client) -> list[str]:
    """Upload each dataset (once per content) and one experiment with the run's scores.

    The experiment's target returns the answers recorded by this run, so the models are
    not called again; one evaluator reports each recorded score (only the metrics that
    apply to the example).

    Returns:
        The experiment names, one per dataset.
    """
    from langsmith import evaluate

    experiments: list[str] = []
    # evaluate() prints a link to the results on stdout, which holds only the report.
    with contextlib.redirect_stdout(sys.stderr):
        for result in run.datasets:
            experiments.append(_experiment(evaluate, client, run, result))
    client.flush()
    return experiments


def _experiment(evaluate: Any, client: Client, run: EvalRun, result: DatasetResult) -> str:
    name = _ensure_dataset(client, result)
    recorded = {
        item.id: {
            "answer": result.runs[item.id].answer,
            "refused": result.runs[item.id].refused,
            "scores": result.scores[item.id],
        }
        for item in result.items
    }

    def target(inputs: dict[str, Any]) -> dict[str, Any]:
        return dict(recorded[inputs["id"]])

    outcome = evaluate(
        target,
        data=name,
        evaluators=[recorded_scores],
        experiment_prefix=name,
        metadata={"model": run.model, "judge": run.judge, "started": run.started},
        client=client,
        max_concurrency=0,
    )
    return str(outcome.experiment_name)
