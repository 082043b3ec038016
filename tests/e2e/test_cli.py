"""The real ``ragent`` CLI in a subprocess: ingest, ask, and clean failures on bad input."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ANSWER_KEYS,
    QUESTION,
    REPORT_KEYS,
    UNANSWERABLE,
    Corpus,
    check_answer_payload,
    fresh_data_dir,
    snapshot,
)
from tests.servers import ragent

pytestmark = pytest.mark.e2e


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"RAGENT_DATA_DIR": str(data_dir), **extra}


def _json_line(result: subprocess.CompletedProcess[str]) -> dict:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


@pytest.fixture(scope="module")
def asked(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Ask the answerable and the unanswerable question, each on its own data dir, at once."""
    runs = {}
    for question in (QUESTION, UNANSWERABLE):
        root = tmp_path_factory.mktemp("ask")
        runs[question] = (root, fresh_data_dir(corpus, root))
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {
            question: pool.submit(ragent, "ask", question, "--json", env=_env(data_dir), cwd=root)
            for question, (root, data_dir) in runs.items()
        }
        return {q: (runs[q][1], f.result()) for q, f in futures.items()}


def test_ingest_prints_one_json_report(corpus: Corpus) -> None:
    lines = corpus.stdout.splitlines()
    assert len(lines) == 1, corpus.stdout
    report = json.loads(lines[0])
    assert REPORT_KEYS <= set(report), sorted(report)
    assert report["documents"] == 1
    assert isinstance(report["chunks"], int) and report["chunks"] > 0
    assert report["unchanged"] == 0
    assert isinstance(report["duplicates"], int) and report["duplicates"] >= 0
    assert report["failed"] == []
    assert isinstance(report["seconds"], int | float) and report["seconds"] >= 0


def test_reingest_skips_unchanged_documents(corpus: Corpus, tmp_path: Path) -> None:
    data_dir = fresh_data_dir(corpus, tmp_path)
    result = ragent("ingest", str(corpus.docs), "--json", env=_env(data_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = _json_line(result)
    assert REPORT_KEYS <= set(report)
    assert report["unchanged"] == corpus.report["documents"]
    assert report["documents"] == 0
    assert report["chunks"] == 0
    assert report["failed"] == []


def test_ask_json_answers_with_citations(asked: dict) -> None:
    data_dir, result = asked[QUESTION]
    assert result.returncode == 0, result.stderr
    payload = _json_line(result)
    check_answer_payload(payload, data_dir)
    assert "1000 pages" in payload["answer"]
    assert (data_dir / "checkpoints.sqlite").is_file()


def test_ask_json_refuses_unanswerable_question(asked: dict) -> None:
    _, result = asked[UNANSWERABLE]
    assert result.returncode == 0, result.stderr
    payload = _json_line(result)
    assert set(payload) == ANSWER_KEYS, sorted(payload)
    assert isinstance(payload["answer"], str) and payload["answer"].strip()
    assert payload["refused"] is True
    assert payload["citations"] == []
    assert isinstance(payload["thread_id"], str) and payload["thread_id"]


BAD_INPUT = [
    pytest.param(["ask", ""], {}, "the question is empty", id="empty-question"),
    pytest.param(["ask", "   "], {}, "the question is empty", id="blank-question"),
    pytest.param(["ingest", "/nonexistent"], {}, "/nonexistent", id="missing-file"),
    pytest.param(["ask", QUESTION], {"RAGENT_CONFIG": "{bad}"}, "malformed", id="bad-yaml-ask"),
    pytest.param(
        ["ingest", "{docs}"], {"RAGENT_CONFIG": "{bad}"}, "malformed", id="bad-yaml-ingest"
    ),
    pytest.param(
        ["ask", QUESTION], {"RAGENT_LLM_TIMEOUT_S": "abc"}, "llm.timeout_s", id="bad-value"
    ),
    pytest.param(
        ["ingest", "{docs}"],
        {"RAGENT_LLM_TIMEOUT_S": "abc"},
        "llm.timeout_s",
        id="bad-value-ingest",
    ),
    pytest.param(["ask", QUESTION], {"RAGENT_PROFILE": "nope"}, "nope", id="unknown-profile"),
]


@pytest.mark.parametrize(("args", "extra_env", "expected"), BAD_INPUT)
def test_bad_input_fails_cleanly(
    asked: dict,
    corpus: Corpus,
    tmp_path: Path,
    args: list[str],
    extra_env: dict[str, str],
    expected: str,
) -> None:
    """One line on stderr, exit code 2, no traceback, and nothing written."""
    data_dir, _ = asked[QUESTION]  # holds an index and a checkpoint database
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: [unclosed\n", encoding="utf-8")
    fill = {"bad": str(bad), "docs": str(corpus.docs)}
    before = snapshot(data_dir)

    result = ragent(
        *(a.format(**fill) for a in args),
        env=_env(data_dir, **{k: v.format(**fill) for k, v in extra_env.items()}),
        cwd=tmp_path,
    )

    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ragent: error:"), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert snapshot(data_dir) == before, "a failed command changed the data dir"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"], "stray files in cwd"


def test_ingest_reports_failed_files_and_keeps_going(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = folder / "good.md"
    good.write_text(
        "# Tea\n\nGreen tea is best steeped at 80 degrees Celsius for two minutes.\n",
        encoding="utf-8",
    )
    bad = folder / "latin1.txt"
    bad.write_bytes(b"caf\xe9 cr\xe8me br\xfbl\xe9e \xff\xfe\n")  # not UTF-8
    (folder / "image.bin").write_bytes(b"\x00\x01")  # unsupported in a folder: skipped
    explicit = tmp_path / "notes.xyz"  # unsupported and named explicitly: failed
    explicit.write_text("some notes\n", encoding="utf-8")
    data_dir = tmp_path / "data"

    result = ragent(
        "ingest", str(folder), str(explicit), "--json", env=_env(data_dir), cwd=tmp_path
    )

    assert result.returncode == 1, (result.stdout, result.stderr)
    report = _json_line(result)
    failed = {f["source"]: f["reason"] for f in report["failed"]}
    assert set(failed) == {str(bad), str(explicit)}, report["failed"]
    assert "UTF-8" in failed[str(bad)]
    assert "unsupported" in failed[str(explicit)]
    assert report["documents"] == 1
    assert report["chunks"] >= 1
    assert report["skipped"] == 1
    uri = f"file:{data_dir / 'index.sqlite'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        sources = [row[0] for row in db.execute("SELECT source FROM documents")]
    assert sources == [str(good)]


def test_an_asked_turn_is_one_trace_under_a_cli_root_span(corpus: Corpus, tmp_path: Path) -> None:
    data_dir = fresh_data_dir(corpus, tmp_path)
    env = _env(data_dir, RAGENT_OBSERVABILITY_EXPORTER="console")
    result = ragent("ask", QUESTION, "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _json_line(result)["citations"]  # stdout holds the answer alone
    spans = [json.loads(line) for line in result.stderr.splitlines() if '"trace_id"' in line]
    (root,) = [s for s in spans if s["name"] == "cli.turn"]
    assert root["parent_id"] is None
    names = {s["name"] for s in spans}
    assert {"node.guard_input", "node.retrieve", "node.respond"} <= names
    assert {s["context"]["trace_id"] for s in spans} == {root["context"]["trace_id"]}
