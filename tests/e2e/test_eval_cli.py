"""``ragent eval retrieval`` and ``ragent tune`` in a subprocess, on the hand-made toy set."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.evals.params import FusionParams
from app.settings import load_settings
from tests.servers import REPO, ragent

pytestmark = pytest.mark.e2e

TOY = REPO / "tests" / "data" / "beir-toy"
MODES = {"bm25", "dense", "hybrid"}
METRICS = {"ndcg@10", "recall@10", "recall@100", "mrr@10"}


def _json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    cwd = tmp_path_factory.mktemp("eval")
    data_dir = cwd / "data"
    args = ["eval", "retrieval", "--beir", str(TOY), "--json"]
    result = ragent(*args, env={"RAGENT_DATA_DIR": str(data_dir)}, cwd=cwd)
    return data_dir, _json(result)


def test_eval_json_has_every_mode_and_metric(evaluated: tuple[Path, dict]) -> None:
    _, report = evaluated
    assert report["dataset"] == "beir-toy"
    assert report["documents"] == 12
    assert report["queries"] == 14  # q9 has no judgements; q99 has no query
    assert report["depth"] == 100
    assert report["hybrid"] == FusionParams.from_settings(load_settings().retrieval).as_dict()
    assert report["rerank"] == "none"
    assert set(report["metrics"]) == MODES
    for mode, values in report["metrics"].items():
        assert set(values) == METRICS, mode
        assert all(0.0 <= v <= 1.0 for v in values.values()), (mode, values)
    assert set(report["seconds"]) == {"index", "search"}


def test_eval_scores_are_sensible_on_the_toy_set(evaluated: tuple[Path, dict]) -> None:
    data_dir, report = evaluated
    metrics = report["metrics"]
    for mode in ("dense", "hybrid"):
        assert metrics[mode]["recall@100"] == 1.0, mode  # every document is ranked
        assert metrics[mode]["recall@10"] == 1.0, mode  # 12 documents, ranked 10 deep
    for mode in MODES:
        # Most questions name their topic, so each mode puts an answer first most times.
        assert metrics[mode]["mrr@10"] >= 0.75, (mode, metrics[mode])
        assert metrics[mode]["ndcg@10"] >= 0.7, (mode, metrics[mode])
    # "collapsed stars" shares no word with the black-hole passage: BM25 cannot find it.
    assert metrics["bm25"]["recall@100"] < 1.0
    assert metrics["bm25"]["ndcg@10"] < metrics["dense"]["ndcg@10"]
    assert not data_dir.exists(), "the evaluation wrote to the configured data dir"


def test_eval_prints_a_table(tmp_path: Path) -> None:
    result = ragent("eval", "retrieval", "--beir", str(TOY), env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "beir-toy: 12 documents, 14 judged queries"
    assert lines[1].split() == ["mode", "ndcg@10", "recall@10", "recall@100", "mrr@10"]
    assert [line.split()[0] for line in lines[2:5]] == ["bm25", "dense", "hybrid"]


def test_tune_writes_a_config_that_reproduces_its_score(tmp_path: Path) -> None:
    # Plain RRF as the starting point, whatever app/configs/default.yaml holds: on the toy set
    # BM25 misses paraphrased questions that dense finds, so weighting dense up must gain.
    base = tmp_path / "base.yaml"
    plain = {"fusion": "rrf", "rrf_k": 60, "dense_weight": 1.0, "keyword_weight": 1.0}
    depths = {"dense_depth": 20, "keyword_depth": 20}
    base.write_text(yaml.safe_dump({"retrieval": {**plain, **depths}}), encoding="utf-8")
    out = tmp_path / "tuned.yaml"
    args = ["tune", "--beir", str(TOY), "--out", str(out), "--folds", "4", "--json"]
    tuned = _json(ragent(*args, "--config", str(base), env={}, cwd=tmp_path))
    assert tuned["default"]["params"] == {**plain, **depths}
    assert tuned["config"] == str(out) and tuned["note"] is None  # no reranker configured
    assert tuned["gain"] == pytest.approx(tuned["tuned"]["ndcg@10"] - tuned["default"]["ndcg@10"])
    assert tuned["tuned"]["ndcg@10"] > tuned["default"]["ndcg@10"]  # see the toy set's README
    assert tuned["cross_validated"]["folds"] == 4
    (dataset,) = tuned["datasets"]
    assert dataset["name"] == "beir-toy" and dataset["queries"] == 14
    settings = load_settings(out)
    assert FusionParams.from_settings(settings.retrieval).as_dict() == tuned["tuned"]["params"]

    args = ["eval", "retrieval", "--beir", str(TOY), "--json", "--config", str(out)]
    again = _json(ragent(*args, env={}, cwd=tmp_path))
    assert again["hybrid"] == tuned["tuned"]["params"]
    assert again["metrics"]["hybrid"]["ndcg@10"] == pytest.approx(tuned["tuned"]["ndcg@10"])
    assert again["metrics"]["bm25"]["ndcg@10"] == pytest.approx(dataset["bm25"])
    assert again["metrics"]["dense"]["ndcg@10"] == pytest.approx(dataset["dense"])


def _break_corpus(folder: Path) -> Path:
    broken = Path(shutil.copytree(TOY, folder / "broken"))
    (broken / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{oops\n', encoding="utf-8")
    return broken


@pytest.mark.parametrize("command", [["eval", "retrieval"], ["tune"]])
@pytest.mark.parametrize("problem", ["missing", "malformed"])
def test_bad_folders_fail_with_one_line(tmp_path: Path, command: list[str], problem: str) -> None:
    folder = tmp_path / "nowhere" if problem == "missing" else _break_corpus(tmp_path)
    result = ragent(*command, "--beir", str(folder), env={}, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragent: error:"), result.stderr
    expected = "no such directory" if problem == "missing" else "corpus.jsonl line 2: not valid"
    assert expected in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "ragent-tuned.yaml").exists()
