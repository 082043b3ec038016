"""Keyword candidates for bench/engines.py, one adapter each with the same five methods.

``build(passages)``, ``search(query, filter, k) -> ids``, ``insert(ids, docs) -> mode``,
``delete(ids) -> mode`` and ``reopen() -> mode`` ("none" without persistence). A passage is
``(title, text)`` and its id is its position. Every document has tenant ``t`` and ACL group
``g{id % 10}``; the filter "all" admits every group and "10%" group 3 only. Each engine
applies the filter as it natively can, and ``filter_mode`` says how. Libraries are imported
by the adapters, so this module loads in either venv.

BM25 is k1=1.2, b=0.75 everywhere (tantivy's and SQLite's fixed values; set for bm25s and
rank_bm25). Stemming: tantivy ``en_stem`` and PyStemmer are Snowball English; FTS5 is Porter.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from engines_common import FILTERS, GROUPS, groups_of, mask_of

_WORD = re.compile(r"\w+", re.UNICODE)
K1, B = 1.2, 0.75
Doc = tuple[str, str]


def passage(doc: Doc) -> str:
    title, text = doc
    return f"{title} {text}".strip() if title else text


def words(text: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))


class _OnDisk:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ragent-engines-"))

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class RagentTantivy(_OnDisk):
    """ragent's adapter, app.retrieval.embedded.keyword.TantivyKeywords, as the product runs it."""

    filter_mode = "in query: tenant + ACL const-score terms"

    def _rows(self, ids: Sequence[int], docs: Sequence[Doc]) -> list:
        from app.retrieval.embedded.keyword import KeywordRow

        return [
            KeywordRow(i, "t", (f"g{i % GROUPS}",), passage(doc), doc[0])
            for i, doc in zip(ids, docs, strict=True)
        ]

    def build(self, passages: Sequence[Doc]) -> None:
        from app.retrieval.embedded.keyword import TantivyKeywords

        self.groups = {f: frozenset(f"g{g}" for g in groups_of(f)) for f in FILTERS}
        self.index = TantivyKeywords(self.folder / "keyword")
        self.index.apply(None, self._rows(range(len(passages)), passages))

    def search(self, query: str, flt: str, k: int) -> list[int]:
        return [rowid for rowid, _ in self.index.search(query, "t", self.groups[flt], k)]

    def insert(self, ids: Sequence[int], docs: Sequence[Doc]) -> str:
        self.index.apply(ids, self._rows(ids, docs))
        return "incremental"

    def delete(self, ids: Sequence[int]) -> str:
        self.index.apply(ids, [])
        return "incremental"

    def reopen(self) -> str:
        from app.retrieval.embedded.keyword import TantivyKeywords

        self.index = TantivyKeywords(self.folder / "keyword")
        return "on disk"


class Tantivy(_OnDisk):
    """tantivy-py directly: one en_stem body field, filters as const-score terms."""

    filter_mode = "in query: tenant + ACL const-score terms"

    def build(self, passages: Sequence[Doc]) -> None:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", tokenizer_name="en_stem")
        builder.add_text_field("tenant", tokenizer_name="raw")
        builder.add_text_field("acl", tokenizer_name="raw")
        builder.add_unsigned_field("id", indexed=True, fast=True)
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema, path=str(self.folder))
        self._filters()
        self._write(range(len(passages)), passages, delete=False)

    def _filters(self) -> None:
        import tantivy

        tenant = tantivy.Query.term_query(self.schema, "tenant", "t")
        self.filters = {}
        for flt in FILTERS:
            acl = [f"g{g}" for g in sorted(groups_of(flt))]
            self.filters[flt] = [
                (tantivy.Occur.Must, tantivy.Query.const_score_query(tenant, 0.0)),
                (
                    tantivy.Occur.Must,
                    tantivy.Query.const_score_query(
                        tantivy.Query.term_set_query(self.schema, "acl", acl), 0.0
                    ),
                ),
            ]

    def _write(self, ids: Sequence[int], docs: Sequence[Doc], *, delete: bool) -> None:
        import tantivy

        writer = self.index.writer(heap_size=64_000_000, num_threads=1)
        if delete:
            writer.delete_documents_by_query(
                tantivy.Query.term_set_query(self.schema, "id", list(ids))
            )
        for i, doc in zip(ids if docs else (), docs, strict=True):
            document = tantivy.Document(body=passage(doc), tenant="t", acl=f"g{i % GROUPS}")
            document.add_unsigned("id", i)
            writer.add_document(document)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()

    def search(self, query: str, flt: str, k: int) -> list[int]:
        import tantivy

        terms = " ".join(words(query))
        if not terms:
            return []
        text = self.index.parse_query(terms, ["body"])
        combined = tantivy.Query.boolean_query([(tantivy.Occur.Must, text), *self.filters[flt]])
        searcher = self.index.searcher()
        hits = searcher.search(combined, k, count=False).hits
        return [int(i) for i in searcher.fast_field_values("id", [a for _, a in hits])]

    def insert(self, ids: Sequence[int], docs: Sequence[Doc]) -> str:
        self._write(ids, docs, delete=False)
        return "incremental"

    def delete(self, ids: Sequence[int]) -> str:
        self._write(ids, [], delete=True)  # nothing to add back
        return "incremental"

    def reopen(self) -> str:
        import tantivy

        self.index = tantivy.Index.open(str(self.folder))
        self.schema = self.index.schema
        self._filters()
        return "on disk"


class SqliteFts5(_OnDisk):
    """SQLite FTS5, porter tokenizer, ``ORDER BY rank`` (bm25 on the body only) LIMIT k."""

    filter_mode = "in query: tenant + ACL column filters in MATCH"

    def _connect(self) -> None:
        self.db = sqlite3.connect(self.folder / "fts.sqlite")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")

    def build(self, passages: Sequence[Doc]) -> None:
        self._connect()
        self.db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(body, tenant, acl, tokenize='porter unicode61')"
        )
        # Weight 0 for tenant and acl: the filter terms add nothing to the score.
        self.db.execute("INSERT INTO docs(docs, rank) VALUES('rank', 'bm25(1.0, 0.0, 0.0)')")
        self.insert(range(len(passages)), passages)
        self.filters = {
            f: ' AND tenant:"t" AND acl:(' + " OR ".join(f'"g{g}"' for g in groups_of(f)) + ")"
            for f in FILTERS
        }

    def search(self, query: str, flt: str, k: int) -> list[int]:
        terms = words(query)
        if not terms:
            return []
        match = "body:(" + " OR ".join(f'"{w}"' for w in terms) + ")" + self.filters[flt]
        sql = "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?"
        return [row[0] for row in self.db.execute(sql, (match, k))]

    def insert(self, ids: Sequence[int], docs: Sequence[Doc]) -> str:
        with self.db:
            self.db.executemany(
                "INSERT INTO docs(rowid, body, tenant, acl) VALUES (?, ?, 't', ?)",
                [(i, passage(d), f"g{i % GROUPS}") for i, d in zip(ids, docs, strict=True)],
            )
        return "incremental"

    def delete(self, ids: Sequence[int]) -> str:
        with self.db:
            self.db.executemany("DELETE FROM docs WHERE rowid = ?", [(i,) for i in ids])
        return "incremental"

    def reopen(self) -> str:
        self.db.close()
        self._connect()
        return "on disk"

    def close(self) -> None:
        self.db.close()
        super().close()


class _Rebuilt(_OnDisk):
    """An in-memory index with no incremental update: every change rebuilds it."""

    def build(self, passages: Sequence[Doc]) -> None:
        import Stemmer

        self.stemmer = Stemmer.Stemmer("english")
        self.docs = dict(enumerate(passages))
        self._index()

    def _index(self) -> None:
        raise NotImplementedError

    def insert(self, ids: Sequence[int], docs: Sequence[Doc]) -> str:
        self.docs.update(zip(ids, docs, strict=True))
        self._index()
        return "rebuild"

    def delete(self, ids: Sequence[int]) -> str:
        for i in ids:
            self.docs.pop(i, None)
        self._index()
        return "rebuild"


class Bm25s(_Rebuilt):
    """bm25s (numpy backend): scores every document per query from a sparse matrix."""

    filter_mode = "weight_mask: score array x 0/1 mask, then top-k"

    def _tokens(self, texts: list[str], **kw: object) -> object:
        import bm25s

        return bm25s.tokenize(
            texts, stopwords=None, stemmer=self.stemmer, show_progress=False, **kw
        )

    def _index(self) -> None:
        import bm25s

        self.ids = np.fromiter(self.docs, np.int64, len(self.docs))
        self.model = bm25s.BM25(k1=K1, b=B)
        tokens = self._tokens([passage(d) for d in self.docs.values()])
        self.model.index(tokens, show_progress=False)
        self.masks = {f: mask_of(self.ids, f).astype(np.float32) for f in FILTERS}

    def search(self, query: str, flt: str, k: int) -> list[int]:
        tokens = self._tokens([query], return_ids=False)
        if not any(t in self.model.vocab_dict for t in tokens[0]):
            return []  # bm25s raises on a query with no indexed word
        docs, scores = self.model.retrieve(
            tokens, k=k, show_progress=False, weight_mask=self.masks[flt]
        )
        return [int(self.ids[d]) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def reopen(self) -> str:
        import bm25s

        self.model.save(str(self.folder / "bm25s"))
        self.model = bm25s.BM25.load(str(self.folder / "bm25s"))
        return "save/load of the whole index"


class RankBm25(_Rebuilt):
    """rank_bm25 BM25Okapi: pure Python/numpy, scores every document per query."""

    filter_mode = "no native filter: mask over the full score array"

    def _tokens(self, text: str) -> list[str]:
        return self.stemmer.stemWords(w.lower() for w in _WORD.findall(text))

    def _index(self) -> None:
        from rank_bm25 import BM25Okapi

        self.ids = np.fromiter(self.docs, np.int64, len(self.docs))
        self.model = BM25Okapi([self._tokens(passage(d)) for d in self.docs.values()], k1=K1, b=B)
        self.masks = {f: mask_of(self.ids, f) for f in FILTERS}

    def search(self, query: str, flt: str, k: int) -> list[int]:
        scores = np.where(self.masks[flt], self.model.get_scores(self._tokens(query)), 0.0)
        top = np.argpartition(-scores, k - 1)[:k] if scores.size > k else np.arange(scores.size)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(self.ids[i]) for i in top if scores[i] > 0]

    def reopen(self) -> str:
        return "none"


RAGENT_SIDE = {"ragent tantivy": RagentTantivy, "tantivy": Tantivy, "sqlite fts5": SqliteFts5}
"""Run in the project's venv."""
PEER_SIDE = {"bm25s": Bm25s, "rank_bm25": RankBm25}
"""Run in the benchmark's own venv."""
