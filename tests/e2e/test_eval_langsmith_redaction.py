"""``ragent eval answers`` with LangSmith: the dataset is uploaded on purpose, its runs are not.

The examples (questions, references) are what an experiment compares against, so they
are sent as the dataset file holds them. Every run, the graph's (traced to
``ragent-eval``), the experiment's and, with a model configured, the judge's model calls
(traced outside the graph, through the process's client since ``LANGSMITH_TRACING`` is
on), carries no question, answer, reference or document text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from tests.e2e.test_eval_answers_langsmith import (  # noqa: F401 - the dataset fixture
    ITEMS,
    FakeLangSmith,
    dataset,
)
from tests.langsmith_server import langsmith_tracing
from tests.openai_server import OpenAIServer, Reply, openai_server

pytestmark = pytest.mark.e2e

ANSWER = "SQLite checkpoints when the WAL file reaches 1000 pages. [S1]"


@contextmanager
def _model(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    with openai_server() as server:
        server.plan("judge", Reply(ANSWER))  # then "Hello from judge." for every call
        monkeypatch.setenv("RAGENT_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("RAGENT_LLM_MODEL", "judge")
        monkeypatch.setenv("RAGENT_LLM_API_KEY", "test-key")
        monkeypatch.setenv("RAGENT_MEMORY_EXTRACTION", "explicit")
        yield server


def _eval(path: Path) -> dict[str, Any]:
    """The run's report; a missed threshold (the scripted model refuses nothing) is fine."""
    result = CliRunner().invoke(cli, ["eval", "answers", str(path), "--json"])
    assert result.exit_code in (0, 1), (result.output, result.exception)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("judged", [False, True], ids=["offline", "judged"])
def test_eval_upload_sends_the_dataset_and_redacted_runs(
    dataset: Path,  # noqa: F811 - the imported fixture
    judged: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeLangSmith()
    with (
        _model(monkeypatch) if judged else nullcontext(),
        langsmith_tracing(fake.app(), monkeypatch) as recorder,
    ):
        report = _eval(dataset)
    assert report["judge"] is judged
    (mini,) = report["datasets"]
    answers = [r["run"]["answer"] for r in mini["results"]]
    assert any("1000 pages" in answer for answer in answers)
    assert {e["inputs"]["question"] for e in fake.examples.values()} == {
        i["question"] for i in ITEMS
    }
    runs = recorder.runs()
    assert sum(run.get("name") == "ragent" for run in runs.values()) == len(ITEMS)
    if judged:  # the judge's calls, outside the graph's runs, were traced too
        judge = [r for r in runs.values() if r.get("session_name") != "ragent-eval"]
        assert any(r.get("run_type") == "llm" for r in judge)
    sent = recorder.text(runs_only=True)
    questions = [i["question"] for i in ITEMS]
    for text in (*answers, *questions, "1000 pages", "WAL file", "Hello from judge"):
        assert text not in sent, text
