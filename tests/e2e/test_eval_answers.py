"""``ragent eval answers`` as a command: real scores, the report, the gate, bad input.

The corpus is two sample documents; the offline answerer runs unless a test points
the model at ``tests/openai_server.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.openai_server import Reply, openai_server
from tests.servers import REPO, ragent

pytestmark = pytest.mark.e2e

CHECKPOINT = {
    "id": "checkpoint",
    "question": "How often does SQLite run a checkpoint in WAL mode?",
    "reference": "By default, SQLite will automatically checkpoint whenever a COMMIT occurs that "
    "causes the WAL file to be 1000 pages or more in size.",
    "gold_docs": ["sqlite-wal.html"],
    "tags": ["sqlite"],
}
STABLE = {
    "id": "stable",
    "question": "Are Python sorts stable?",
    "reference": "Yes: sorts are guaranteed to be stable.",
    "gold_docs": ["python-sorting-howto.txt"],
    "tags": ["python"],
}
GOOD = [
    CHECKPOINT,
    STABLE,
    {"id": "world-cup", "question": "Who won the 2018 FIFA World Cup?", "must_refuse": True},
    {
        "id": "sum",
        "question": "What is 17 * 23?",
        "reference": "The calculator returned 391.",
        "expected_tools": [{"name": "calculator", "args": {"expression": "17*23"}}],
        "tags": ["tools"],
    },
]
# The same questions with a wrong reference answer and a wrong gold document.
PLANTED = [
    {**CHECKPOINT, "reference": "Python-Markdown outputs XHTML.", "gold_docs": ["other.md"]},
    {**STABLE, "reference": "Postgres95 was released in 1994.", "gold_docs": ["other.md"]},
]
YEAR_SCHEMA = {
    "type": "object",
    "properties": {"year": {"type": "integer"}},
    "required": ["year"],
    "additionalProperties": False,
}
# A schema the offline answerer can fill (one string field), and one only a model can.
YEAR = {"id": "year", "question": "When did POSTGRES begin?", "json_schema": YEAR_SCHEMA}
ANSWER = {
    "id": "answer",
    "question": "Are Python sorts stable?",
    "json_schema": {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    },
}
# Two items of one set: the second must not see what the first told the agent.
MEMORY = [
    {"id": "tell", "question": "Remember that my name is Ada."},
    {"id": "ask", "question": "What is my name?"},
]
THRESHOLDS = {"recall@10": 0.9, "citation_precision": 0.9, "answer_f1": 0.3}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sets")
    (root / "docs").mkdir()
    for name in ("sqlite-wal.html", "python-sorting-howto.txt"):
        shutil.copy(REPO / "samples" / name, root / "docs")
    entry = {"corpus": "docs", "thresholds": {**THRESHOLDS, "refusal_accuracy": 1.0}}
    one = {"corpus": "docs"}
    config = {
        "datasets": {
            "good.jsonl": entry,
            "planted.jsonl": entry,
            "one.jsonl": one,
            "json.jsonl": one,
            "memory.jsonl": one,
        }
    }
    (root / "datasets.yaml").write_text(json.dumps(config), encoding="utf-8")
    _jsonl(root / "good.jsonl", GOOD)
    _jsonl(root / "planted.jsonl", PLANTED)
    _jsonl(root / "one.jsonl", [CHECKPOINT])
    _jsonl(root / "json.jsonl", [YEAR, ANSWER])
    _jsonl(root / "memory.jsonl", MEMORY)
    return root


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return ragent(
        "eval",
        "answers",
        *args,
        env={"RAGENT_DATA_DIR": str(cwd / "data"), **(env or {})},
        cwd=cwd,
        timeout=400,
    )


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in report["datasets"]}


@pytest.fixture(scope="module")
def planted_run(sets: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = sets / "report"
    result = _run(
        str(sets / "good.jsonl"),
        str(sets / "planted.jsonl"),
        "--json",
        "--report",
        str(out),
        cwd=sets,
    )
    return result, out


def test_planted_errors_drop_the_scores_and_fail_the_gate(
    planted_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, _ = planted_run
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    good, planted = _by_name(report)["good.jsonl"], _by_name(report)["planted.jsonl"]
    assert good["passed"], good["misses"]
    assert good["metrics"]["recall@10"] == 1.0 and good["metrics"]["citation_precision"] == 1.0
    assert good["metrics"]["tool_args_accuracy"] == 1.0
    assert good["metrics"]["refusal_accuracy"] == 1.0
    assert planted["metrics"]["recall@10"] == 0.0
    assert planted["metrics"]["answer_f1"] < good["metrics"]["answer_f1"] / 2
    missed = [line for line in result.stderr.splitlines() if "threshold missed" in line]
    assert sorted(m.split(": ")[3].split()[0] for m in missed) == ["answer_f1", "recall@10"]
    assert all("planted.jsonl" in line for line in missed)
    assert report["tenant"] == "ragent-eval" and report["user"] == "ragent-eval"
    assert not (planted_run[1].parent / "data").exists()  # the configured data dir is untouched


def test_the_report_has_every_file_and_names_every_metric(
    planted_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, out = planted_run
    assert sorted(p.name for p in out.iterdir()) == [
        "latency.png",
        "report.md",
        "results.json",
        "scores_by_tag.png",
    ]
    for chart in ("latency.png", "scores_by_tag.png"):
        with Image.open(out / chart) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] >= 300
    markdown = (out / "report.md").read_text(encoding="utf-8")
    report = json.loads(result.stdout)
    assert (
        json.loads((out / "results.json").read_text(encoding="utf-8"))["datasets"]
        == report["datasets"]
    )
    metrics = {m for d in report["datasets"] for m in d["metrics"]}
    assert metrics >= {
        "recall@10",
        "mrr@10",
        "ndcg@10",
        "citation_precision",
        "answer_f1",
        "exact_match",
        "refusal_accuracy",
        "tool_name_accuracy",
        "tool_args_accuracy",
    }
    for metric in metrics:
        assert metric in markdown, metric
    assert "FAILED (2 thresholds missed)" in markdown
    assert (
        "![latency](latency.png)" in markdown and "![scores by tag](scores_by_tag.png)" in markdown
    )


def test_a_broken_model_falls_below_the_thresholds(sets: Path) -> None:
    with openai_server() as server:  # every reply: "Hello from broken." (no citation, wrong)
        env = {
            "RAGENT_LLM_BASE_URL": server.base_url,
            "RAGENT_LLM_MODEL": "broken",
            "RAGENT_LLM_API_KEY": "test-key",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
        }
        result = _run(str(sets / "good.jsonl"), "--json", cwd=sets, env=env)
        assert server.calls("broken") >= len(GOOD)
    assert result.returncode == 1, result.stderr
    (good,) = json.loads(result.stdout)["datasets"]
    metrics = good["metrics"]
    assert metrics["citation_precision"] == 0.0 and metrics["answer_f1"] < 0.1
    assert metrics["refusal_accuracy"] < 1.0
    assert metrics["judge_correctness"] == 0.0  # the judge's replies are not verdicts either
    missed = {
        line.split(": ")[3].split()[0] for line in result.stderr.splitlines() if "missed" in line
    }
    assert missed == {"citation_precision", "answer_f1", "refusal_accuracy"}


def test_the_judge_decides_with_a_schema(sets: Path) -> None:
    with openai_server() as server:
        server.plan(
            "judge",
            Reply("SQLite checkpoints when the WAL file reaches 1000 pages. [S1]"),
            Reply('{"correct": true, "reason": "same facts"}'),
            Reply('{"supported": false, "reason": "not in the passage"}'),
        )
        env = {
            "RAGENT_LLM_BASE_URL": server.base_url,
            "RAGENT_LLM_MODEL": "judge",
            "RAGENT_LLM_API_KEY": "test-key",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
        }
        result = _run(str(sets / "one.jsonl"), "--json", cwd=sets, env=env)
        judged = server.requests[1:]
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["judge"] is True and report["model"] == "judge"
    (only,) = report["datasets"]
    assert only["metrics"]["judge_correctness"] == 1.0
    assert only["metrics"]["judge_citation_precision"] == 0.0
    assert [r["response_format"]["json_schema"]["name"] for r in judged] == [
        "CorrectnessVerdict",
        "SupportVerdict",
    ]


def _validity(report: dict[str, Any]) -> dict[str, float]:
    (only,) = report["datasets"]
    return {r["id"]: r["scores"]["json_validity"] for r in only["results"]}


def test_an_item_with_a_schema_asks_the_model_for_it(sets: Path) -> None:
    with openai_server() as server:
        server.plan(
            "json",
            Reply('{"year": 1986}'),
            Reply("Sorts are stable."),  # not JSON: one repair is asked for, and fails too
            Reply("Still prose."),
        )
        env = {
            "RAGENT_LLM_BASE_URL": server.base_url,
            "RAGENT_LLM_MODEL": "json",
            "RAGENT_LLM_API_KEY": "test-key",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
        }
        result = _run(str(sets / "json.jsonl"), "--json", cwd=sets, env=env)
        asked = [r for r in server.requests if r.get("response_format")]
    assert result.returncode == 0, result.stderr
    assert _validity(json.loads(result.stdout)) == {"year": 1.0, "answer": 0.0}
    first = asked[0]
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == YEAR_SCHEMA
    system = first["messages"][0]["content"]
    assert "It must validate against this JSON schema" in system and '"year"' in system


def test_the_offline_answerer_is_scored_on_the_schemas_it_can_fill(sets: Path) -> None:
    result = _run(str(sets / "json.jsonl"), "--json", cwd=sets)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert _validity(report) == {"year": 0.0, "answer": 1.0}
    (only,) = report["datasets"]
    errors = {r["id"]: r["run"]["error"] for r in only["results"]}
    assert "one required field is a plain string" in (errors["year"] or "")
    assert errors["answer"] is None


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing", "no such dataset"),
        ("malformed", "line 2: not valid JSON"),
        ("report-file", "--report must be a folder"),
        ("bad-config", "not valid YAML"),
        ("no-config", "no such datasets config"),
        ("no-corpus", "corpus folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, problem: str, message: str) -> None:
    dataset = _jsonl(tmp_path / "set.jsonl", [STABLE])
    args = [str(dataset)]
    if problem == "missing":
        args = [str(tmp_path / "nope.jsonl")]
    elif problem == "malformed":
        dataset.write_text(json.dumps(STABLE) + "\n{oops\n", encoding="utf-8")
    elif problem == "report-file":
        (tmp_path / "taken").write_text("x", encoding="utf-8")
        args += ["--report", str(tmp_path / "taken")]
    elif problem == "bad-config":
        (tmp_path / "datasets.yaml").write_text("datasets: [", encoding="utf-8")
    elif problem == "no-config":
        args += ["--datasets-config", str(tmp_path / "none.yaml")]
    else:
        config = {"datasets": {"set.jsonl": {"corpus": "gone"}}}
        (tmp_path / "datasets.yaml").write_text(json.dumps(config), encoding="utf-8")
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragent: error: "), result.stderr
    assert message in lines[0]


def test_eval_retrieval_checks_the_datasets_thresholds(tmp_path: Path) -> None:
    toy = Path(shutil.copytree(REPO / "tests" / "data" / "beir-toy", tmp_path / "beir" / "toy"))
    # Met, then missed: BM25 cannot find the paraphrased "collapsed stars" passage.
    thresholds = {"dense.recall@10": 0.99, "bm25.recall@100": 0.999}
    config = {"datasets": {"toy": {"thresholds": thresholds}}}
    (tmp_path / "datasets.yaml").write_text(json.dumps(config), encoding="utf-8")
    args = ["eval", "retrieval", "--beir", str(toy), "--json"]
    result = ragent(*args, env={"RAGENT_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    bm25 = json.loads(result.stdout)["metrics"]["bm25"]["recall@100"]
    assert result.stderr.strip().splitlines() == [
        f"ragent: threshold missed: toy: bm25.recall@100 {bm25:.3f} < 0.999"
    ]


def test_each_item_runs_as_a_user_of_its_own(sets: Path) -> None:
    # Long-term memories are per user: with one user for the whole run, the first item's
    # "my name is Ada" was remembered and answered the second item.
    result = _run(str(sets / "memory.jsonl"), "--json", cwd=sets)
    assert "Traceback" not in result.stderr
    runs = {
        r["id"]: r["run"] for r in _by_name(json.loads(result.stdout))["memory.jsonl"]["results"]
    }
    assert runs["tell"]["error"] is None and runs["ask"]["error"] is None
    assert "your name is Ada" not in runs["ask"]["answer"], runs["ask"]
