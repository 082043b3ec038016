"""BM25 over a tantivy index on disk, with tenant and ACL as terms inside the query.

Each chunk is one tantivy document keyed by its SQLite rowid. The index is
derived data: :class:`TantivyKeywords` only applies changes it is handed
(delete by rowid, then add), so replaying a change is harmless and the owner
can rebuild it from the chunks table at any time.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import tantivy
from filelock import FileLock

__all__ = ["KeywordRow", "TantivyKeywords", "keyword_terms"]

PUBLIC = "\x00public"
"""The ACL term of chunks every user of the tenant may read (not a valid group name)."""

_WORD = re.compile(r"\w+", re.UNICODE)
_SCHEMA_VERSION = "1"
_DELETE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class KeywordRow:
    """What the keyword index stores for one chunk."""

    rowid: int
    tenant_id: str
    acl: tuple[str, ...]
    text: str
    heading: str


def keyword_terms(text: str) -> str:
    """Turn free text into a safe tantivy query: lower-cased words, OR-ed.

    Lower-casing keeps ``AND``/``OR``/``NOT`` from being read as operators, and
    keeping only word characters drops every other piece of query syntax.
    """
    return " ".join(dict.fromkeys(w.lower() for w in _WORD.findall(text)))


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", tokenizer_name="en_stem")
    builder.add_text_field("heading", tokenizer_name="en_stem")
    builder.add_text_field("tenant", tokenizer_name="raw")
    builder.add_text_field("acl", tokenizer_name="raw")
    builder.add_unsigned_field("rowid", indexed=True, fast=True)
    return builder.build()


class TantivyKeywords:
    """A tantivy index of chunks. Callers serialise writes (one writer at a time)."""

    def __init__(self, path: Path) -> None:
        """Open the index directory ``path``, creating or recreating it as needed.

        Processes that open it at once (``ragent serve --workers N`` on a fresh data
        folder) take turns: otherwise one could remove the folder another is creating.
        """
        self.path = path
        self.schema = _schema()
        version = path / "ragent-schema"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path.with_name(path.name + ".lock")):
            if path.exists() and (not version.exists() or version.read_text() != _SCHEMA_VERSION):
                shutil.rmtree(path)  # derived data: the owner re-applies every chunk
            fresh = not path.exists()
            path.mkdir(exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(path))
            version.write_text(_SCHEMA_VERSION)
        self.created = fresh

    def apply(self, touched: Iterable[int] | None, rows: Iterable[KeywordRow]) -> None:
        """Delete every touched rowid, add ``rows``, and commit once.

        Args:
            touched: Rowids that changed since the last apply (added or removed);
                None replaces the whole index with ``rows``.
            rows: The current content of those that still exist.
        """
        writer = self.index.writer(heap_size=64_000_000, num_threads=1)
        try:
            if touched is None:
                writer.delete_all_documents()
            else:
                # By query: delete_documents_by_term() does not match u64 terms.
                ids = list(touched)
                for i in range(0, len(ids), _DELETE_BATCH):
                    part = ids[i : i + _DELETE_BATCH]
                    writer.delete_documents_by_query(
                        tantivy.Query.term_set_query(self.schema, "rowid", part)
                    )
            for row in rows:
                doc = tantivy.Document()
                doc.add_text("text", row.text)
                doc.add_text("heading", row.heading)
                doc.add_text("tenant", row.tenant_id)
                for group in row.acl or (PUBLIC,):
                    doc.add_text("acl", group)
                doc.add_unsigned("rowid", row.rowid)
                writer.add_document(doc)
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            writer.rollback()
            raise
        self.index.reload()

    def reload(self) -> None:
        """See commits made by another process."""
        self.index.reload()

    def search(
        self, query: str, tenant_id: str, groups: frozenset[str], k: int
    ) -> list[tuple[int, float]]:
        """Return ``(rowid, bm25)`` of the best ``k`` matches visible to the caller."""
        terms = keyword_terms(query)
        if not terms or k <= 0:
            return []
        text = self.index.parse_query(terms, ["text", "heading"])
        must = tantivy.Occur.Must
        tenant = tantivy.Query.term_query(self.schema, "tenant", tenant_id)
        acl = tantivy.Query.term_set_query(self.schema, "acl", [PUBLIC, *sorted(groups)])
        # The filters score zero, so the BM25 score is the text match alone.
        combined = tantivy.Query.boolean_query(
            [
                (must, text),
                (must, tantivy.Query.const_score_query(tenant, 0.0)),
                (must, tantivy.Query.const_score_query(acl, 0.0)),
            ]
        )
        searcher = self.index.searcher()
        result = searcher.search(combined, k, count=False)
        addresses = [address for _, address in result.hits]
        rowids = searcher.fast_field_values("rowid", addresses)
        return [
            (int(rowid), float(score))
            for rowid, (score, _) in zip(rowids, result.hits, strict=True)
            if rowid is not None
        ]
