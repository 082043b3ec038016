"""Shared e2e fixtures: one ingested corpus, fresh data dirs, and answer checks.

The corpus is ingested once per test package with the real ``ragent ingest``;
each server or CLI test then works on its own copy of the index, so runs and
checkpoints of one test never leak into another.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from app.ingest.clean import clean_documents
from app.ingest.loaders import load_document
from tests.servers import REPO, ragent, service

QUESTION = "How often does SQLite run a checkpoint in WAL mode?"
UNANSWERABLE = "What is the airspeed velocity of an unladen swallow?"
REPORT_KEYS = {"documents", "chunks", "unchanged", "duplicates", "failed", "seconds"}
ANSWER_KEYS = {"answer", "citations", "thread_id", "refused"}
CITATION_KEYS = {"label", "source", "doc_id", "chunk_id", "span"}
LABEL = re.compile(r"\[(S\d+)\]")


@dataclass(frozen=True)
class Corpus:
    """``samples/sqlite-wal.html`` (copied to ``docs``) ingested into ``data_dir``."""

    docs: Path
    data_dir: Path
    stdout: str
    report: dict[str, Any]


def hermetic_environment() -> Iterator[None]:
    """Ignore the developer's ``RAGENT_*`` settings while a package of tests runs."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("RAGENT_"):
                mp.delenv(key)
        mp.setenv("LANGGRAPH_CLI_NO_ANALYTICS", "1")
        yield


def ingest_sample(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Ingest the sample with the real CLI, once per package; tests copy the index."""
    root = tmp_path_factory.mktemp("corpus")
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(REPO / "samples" / "sqlite-wal.html", docs)
    data_dir = root / "data"
    result = ragent("ingest", str(docs), "--json", env={"RAGENT_DATA_DIR": str(data_dir)}, cwd=root)
    assert result.returncode == 0, result.stderr
    return Corpus(docs, data_dir, result.stdout, json.loads(result.stdout))


@pytest.fixture(scope="package", autouse=True)
def _hermetic_env() -> Iterator[None]:
    yield from hermetic_environment()


@pytest.fixture(scope="package")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The sample, ingested once for the e2e package."""
    return ingest_sample(tmp_path_factory)


def fresh_data_dir(corpus: Corpus, parent: Path) -> Path:
    """A new data dir holding a copy of the corpus index (and no checkpoints)."""
    data_dir = parent / "data"
    data_dir.mkdir(parents=True)
    for path in corpus.data_dir.glob("index.sqlite*"):
        shutil.copy2(path, data_dir / path.name)
    return data_dir


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with the SHA-256 of its content."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@contextmanager
def running(
    args: list[str], *, health_url: str, env: dict[str, str], cwd: Path
) -> Iterator[list[str]]:
    """Run a server with :func:`tests.servers.service`; yields its output lines as they come.

    The output is read continuously, so a chatty server never stalls on a full
    pipe, and the pipe is closed afterwards (``service`` leaves it open).
    """
    lines: list[str] = []
    stdout: IO[bytes] | None = None
    reader: threading.Thread | None = None

    def pump(stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode(errors="replace"))

    try:
        with service(args, health_url=health_url, env=env, cwd=cwd) as proc:
            stdout = proc.stdout
            assert stdout is not None
            reader = threading.Thread(target=pump, args=(stdout,), daemon=True)
            reader.start()
            yield lines
    finally:
        if reader is not None:
            reader.join(10)
        if stdout is not None:
            stdout.close()


def chunk_row(data_dir: Path, chunk_id: str) -> sqlite3.Row | None:
    """The indexed chunk ``chunk_id``, read straight from the embedded index."""
    uri = f"file:{data_dir / 'index.sqlite'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(
            "SELECT chunk_id, doc_id, source, text, span_start, span_end FROM chunks "
            "WHERE chunk_id = ?",
            (chunk_id,),
        ).fetchone()


def check_citations(answer: str, citations: list[dict[str, Any]], data_dir: Path) -> None:
    """Every [S#] of ``answer`` is cited, and every citation maps to an indexed chunk.

    The span of a citation, applied to the text of its source document, gives
    exactly the chunk's text.
    """
    used = set(LABEL.findall(answer))
    assert used, f"no [S#] citation in the answer: {answer!r}"
    labels = [c["label"] for c in citations]
    assert len(labels) == len(set(labels)), labels
    assert used <= set(labels), (used, labels)
    texts: dict[str, str] = {}
    for citation in citations:
        assert set(citation) == CITATION_KEYS, citation
        assert LABEL.fullmatch(f"[{citation['label']}]"), citation
        span = citation["span"]
        assert isinstance(span, list) and len(span) == 2, span
        start, end = span
        assert isinstance(start, int) and isinstance(end, int), span
        assert 0 <= start < end, span
        row = chunk_row(data_dir, citation["chunk_id"])
        assert row is not None, f"citation {citation['label']} names no indexed chunk"
        assert (row["doc_id"], row["source"]) == (citation["doc_id"], citation["source"])
        assert (row["span_start"], row["span_end"]) == (start, end)
        source = citation["source"]
        if source not in texts:
            # Spans index the extracted, cleaned text of the document (one-document batch).
            (doc,) = load_document(Path(source), max_bytes=50_000_000)
            (cleaned,), _ = clean_documents([doc])
            texts[source] = cleaned.text()
        assert texts[source][start:end] == row["text"], citation["label"]


def check_answer_payload(payload: Any, data_dir: Path) -> None:
    """The stable answer shape of ``ragent ask --json`` and ``POST /v1/ask``, answered."""
    assert isinstance(payload, dict)
    assert set(payload) == ANSWER_KEYS, sorted(payload)
    assert isinstance(payload["answer"], str) and payload["answer"].strip()
    assert isinstance(payload["citations"], list)
    assert isinstance(payload["thread_id"], str) and payload["thread_id"]
    assert payload["refused"] is False
    check_citations(payload["answer"], payload["citations"], data_dir)
