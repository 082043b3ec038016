from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.evals.beir import BeirError, load_beir

TOY = Path(__file__).resolve().parents[2] / "data" / "beir-toy"


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A writable copy of the toy set, to break in each test."""
    return Path(shutil.copytree(TOY, tmp_path / "toy"))


def test_loads_the_toy_set() -> None:
    data = load_beir(TOY)
    assert data.name == "beir-toy"
    assert len(data.corpus) == 12
    assert data.corpus["d04"].title == "Eiffel Tower"
    assert data.corpus["d04"].passage.startswith("Eiffel Tower The Eiffel Tower is")
    assert data.queries["q1"] == "how do bees make honey"
    assert data.qrels["q1"] == {"d01": 2, "d11": 1, "d07": 0}


def test_only_queries_with_judgements_are_scored() -> None:
    data = load_beir(TOY)
    assert "q9" in data.queries and "q9" not in data.judged  # asked but never judged
    assert "q99" not in data.qrels  # judged but never asked: dropped
    assert data.judged == [q for q in data.queries if q != "q9"]


def test_title_is_optional_and_numeric_ids_become_text(toy: Path) -> None:
    (toy / "corpus.jsonl").write_text(
        json.dumps({"_id": 7, "text": "no title here"}) + "\n", encoding="utf-8"
    )
    (toy / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t7\t1\n")
    data = load_beir(toy)
    assert data.corpus["7"].passage == "no title here"
    assert data.judged == ["q1"]


def _corrupt(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "corpus.jsonl",
            '{"_id": "a", "text": "x"}\n{not json\n',
            "corpus.jsonl line 2: not valid",
        ),
        ("corpus.jsonl", '["a", "b"]\n', "line 1: expected a JSON object"),
        ("corpus.jsonl", '{"_id": "a"}\n', "field 'text' is missing"),
        ("corpus.jsonl", '{"_id": "a", "text": 3}\n', "field 'text' is not a string (int)"),
        ("corpus.jsonl", '{"text": "x"}\n', "field '_id' is missing"),
        ("corpus.jsonl", '{"_id": "a", "text": "x", "title": ["t"]}\n', "'title' is not a string"),
        ("corpus.jsonl", '{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n', "duplicate _id"),
        ("corpus.jsonl", "\n", "no documents"),
        ("queries.jsonl", '{"_id": "q1"}\n', "queries.jsonl line 1: field 'text' is missing"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td01\n", "test.tsv line 2: expected"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td01\thigh\n", "line 2: expected"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\n", "no judgements"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nzz\td01\t1\n", "no query in queries.jsonl"),
    ],
)
def test_malformed_files_are_named_with_their_line(
    toy: Path, name: str, text: str, message: str
) -> None:
    _corrupt(toy, name, text)
    with pytest.raises(BeirError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_beir(toy)


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_files_are_named(toy: Path, missing: str) -> None:
    (toy / missing).unlink()
    with pytest.raises(BeirError, match=f"missing .*{missing}"):
        load_beir(toy)


def test_missing_folder_and_non_utf8_text(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(BeirError, match="no such directory"):
        load_beir(tmp_path / "nowhere")
    (toy / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "caf\xe9"}\n')
    with pytest.raises(BeirError, match="queries.jsonl: not UTF-8"):
        load_beir(toy)
