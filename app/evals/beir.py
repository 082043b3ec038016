"""Load a BEIR-format folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BeirDataset", "BeirDoc", "BeirError", "load_beir"]


class BeirError(ValueError):
    """A missing or malformed BEIR folder, with a message fit for one line of output."""


@dataclass(frozen=True, slots=True)
class BeirDoc:
    """One corpus entry."""

    title: str
    text: str

    @property
    def passage(self) -> str:
        """The text that is indexed: the title, then the body."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True)
class BeirDataset:
    """A corpus, its queries and relevance judgements (graded; 0 means judged not relevant)."""

    name: str
    corpus: dict[str, BeirDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    """Only for queries present in ``queries``: ``{query_id: {corpus_id: grade}}``."""

    @property
    def judged(self) -> list[str]:
        """Ids of the queries that have judgements, in file order: the ones that are scored."""
        return [qid for qid in self.queries if qid in self.qrels]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise BeirError(f"missing {path}") from None
    except OSError as exc:
        raise BeirError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise BeirError(f"{path} line {number}: not valid JSON") from None
                if not isinstance(row, dict):
                    raise BeirError(f"{path} line {number}: expected a JSON object")
                yield number, row
        except UnicodeDecodeError:
            raise BeirError(f"{path}: not UTF-8 text") from None


def _field(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if key == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # some exports write numeric ids; qrels hold them as text
    if not isinstance(value, str):
        state = "missing" if value is None else f"not a string ({type(value).__name__})"
        raise BeirError(f"{where}: field {key!r} is {state}")
    return value


def _load_corpus(path: Path) -> dict[str, BeirDoc]:
    corpus: dict[str, BeirDoc] = {}
    for number, row in _jsonl(path):
        where = f"{path} line {number}"
        doc_id = _field(row, "_id", where)
        if doc_id in corpus:
            raise BeirError(f"{where}: duplicate _id {doc_id!r}")
        title = row.get("title") or ""
        if not isinstance(title, str):
            raise BeirError(f"{where}: field 'title' is not a string")
        corpus[doc_id] = BeirDoc(title=title, text=_field(row, "text", where))
    if not corpus:
        raise BeirError(f"{path}: no documents")
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, row in _jsonl(path):
        where = f"{path} line {number}"
        query_id = _field(row, "_id", where)
        if query_id in queries:
            raise BeirError(f"{where}: duplicate _id {query_id!r}")
        queries[query_id] = _field(row, "text", where)
    return queries


def _load_qrels(path: Path) -> dict[str, dict[str, int]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise BeirError(f"missing {path}") from None
    except UnicodeDecodeError:
        raise BeirError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BeirError(f"cannot read {path}: {exc.strerror or exc}") from None
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if number == 1 and not _is_int(parts[-1]):
            continue  # the header: query-id, corpus-id, score
        if len(parts) != 3 or not parts[0] or not parts[1] or not _is_int(parts[2]):
            raise BeirError(
                f"{path} line {number}: expected 'query-id<TAB>corpus-id<TAB>integer score'"
            )
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    if not qrels:
        raise BeirError(f"{path}: no judgements")
    return qrels


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def load_beir(folder: Path) -> BeirDataset:
    """Load and validate a BEIR folder.

    Args:
        folder: Holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
            (``_id``, ``text``) and ``qrels/test.tsv`` (``query-id corpus-id score``, with
            a header line).

    Returns:
        The dataset; judgements for queries absent from ``queries.jsonl`` are dropped.

    Raises:
        BeirError: A file is missing, unreadable or malformed, or no query is judged.
    """
    if not folder.is_dir():
        raise BeirError(f"not a BEIR folder (no such directory): {folder}")
    corpus = _load_corpus(folder / "corpus.jsonl")
    queries = _load_queries(folder / "queries.jsonl")
    qrels = _load_qrels(folder / "qrels" / "test.tsv")
    kept = {qid: judged for qid, judged in qrels.items() if qid in queries}
    if not kept:
        raise BeirError(f"{folder}: no query in queries.jsonl has judgements in qrels/test.tsv")
    return BeirDataset(name=folder.resolve().name, corpus=corpus, queries=queries, qrels=kept)
