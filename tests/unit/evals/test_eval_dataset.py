"""Answer-eval datasets: JSONL items, the datasets config, and the shipped sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.evals.beir import load_beir
from app.evals.dataset import (
    EvalDataError,
    default_config_path,
    load_config,
    load_items,
)
from tests.servers import REPO

DATASETS = REPO / "evals" / "datasets"


def _write(path: Path, *rows: object) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_items_load_in_order_with_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "set.jsonl",
        {"id": "a", "question": "Why?", "reference": "Because.", "gold_docs": ["x.md"]},
        "",
        {"id": "b", "question": "Sum?", "expected_tools": [{"name": "calculator"}]},
    )
    first, second = load_items(path)
    assert (first.id, first.reference, first.gold_docs) == ("a", "Because.", ["x.md"])
    assert first.expected_tools is None and not first.must_refuse and not first.attack
    assert second.expected_tools is not None and second.expected_tools[0].args == {}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('["a list"]', "line 2: expected a JSON object"),
        ({"id": "b"}, "line 2: question: Field required"),
        ({"id": "b", "question": "   "}, "line 2: question: Value error, must not be blank"),
        ({"id": "b", "question": "q", "colour": "red"}, "line 2: colour: Extra inputs"),
        ({"id": "a", "question": "again"}, "line 2: duplicate id 'a'"),
        ({"id": "b", "question": "q", "expected_tools": [{"args": {}}]}, "expected_tools.0.name"),
    ],
)
def test_bad_lines_name_the_line(tmp_path: Path, row: object, message: str) -> None:
    path = _write(tmp_path / "set.jsonl", {"id": "a", "question": "fine"}, row)
    with pytest.raises(EvalDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_items(path)


def test_missing_empty_and_binary_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="no such dataset"):
        load_items(tmp_path / "nope.jsonl")
    with pytest.raises(EvalDataError, match="no items"):
        load_items(_write(tmp_path / "empty.jsonl", ""))
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(EvalDataError, match="not UTF-8"):
        load_items(tmp_path / "bin.jsonl")
    with pytest.raises(EvalDataError, match="is a folder"):
        load_items(tmp_path)


def test_config_resolves_corpus_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    config_path = tmp_path / "sets" / "datasets.yaml"
    config_path.parent.mkdir()
    config_path.write_text(
        "datasets:\n  qa.jsonl:\n    corpus: ../docs\n    thresholds: {answer_f1: 0.5}\n",
        encoding="utf-8",
    )
    config = load_config(config_path)
    entry = config.for_dataset("qa.jsonl")
    assert entry.corpus is not None and entry.corpus.resolve() == (tmp_path / "docs").resolve()
    assert entry.thresholds == {"answer_f1": 0.5}
    assert config.for_dataset("other.jsonl").thresholds == {}
    assert default_config_path(config_path.parent / "qa.jsonl") == config_path
    assert default_config_path(config_path.parent / "beir" / "x") == config_path
    assert default_config_path(tmp_path / "elsewhere.jsonl") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("datasets: [unclosed", "line 1: not valid YAML"),
        ("datasets:\n  a.jsonl:\n    thresholds: {f1: high}\n", "thresholds.f1"),
        ("sets: {}\n", "sets: Extra inputs"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalDataError, match=message):
        load_config(path)


def test_shipped_sets_are_valid_and_name_real_documents() -> None:
    config = load_config(DATASETS / "datasets.yaml")
    samples = {p.name for p in (REPO / "samples").iterdir() if p.suffix}
    for name in ("samples_qa.jsonl", "tool_use.jsonl", "injection.jsonl"):
        items = load_items(DATASETS / name)
        entry = config.for_dataset(name)
        assert entry.thresholds, name
        assert entry.corpus is not None and entry.corpus.resolve() == (REPO / "samples")
        for item in items:
            assert set(item.gold_docs) <= samples, (name, item.id)
    qa = load_items(DATASETS / "samples_qa.jsonl")
    assert sum(bool(i.gold_docs) for i in qa) >= 15 and sum(i.must_refuse for i in qa) >= 3
    assert {d for i in qa for d in i.gold_docs} == samples  # every sample document is asked about
    injection = load_items(DATASETS / "injection.jsonl")
    attacks = [i for i in injection if i.attack]
    assert len(attacks) >= 15 and all(i.must_refuse for i in attacks)
    # The rest are benign look-alikes ("ignore case"), answered from the documents.
    assert all(not i.must_refuse and i.gold_docs for i in injection if not i.attack)
    tools = load_items(DATASETS / "tool_use.jsonl")
    assert all(i.expected_tools is not None for i in tools)


def test_shipped_beir_sets_load_and_are_gated_in_ci() -> None:
    config = load_config(DATASETS / "datasets.yaml")
    judged = {"dbpedia": 40, "business-reports": 11, "sqlite-docs": 54}
    folders = sorted(p for p in (DATASETS / "beir").iterdir() if p.is_dir())
    assert [f.name for f in folders] == sorted(judged)
    for folder in folders:
        assert (folder / "README.md").is_file()
        assert len(load_beir(folder).judged) == judged[folder.name]
        thresholds = config.for_dataset(folder.name).thresholds
        assert "hybrid.ndcg@10" in thresholds, folder.name
        assert all(k.split(".")[0] in {"bm25", "dense", "hybrid"} for k in thresholds)
    # scripts/test.sh (CI) runs the retrieval gate on every one of them.
    script = (REPO / "scripts" / "test.sh").read_text()
    assert "for beir in evals/datasets/beir/*/; do" in script
    assert '.venv/bin/ragent eval retrieval --beir "$beir" || eval_status=$?' in script
