"""The embedded store's derived indexes follow SQLite: other writers, rebuilds, migration."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.embedded import changelog
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.types import Chunk, DocumentRecord, SearchFilter
from tests.fakes import HashEmbedder

EMB = HashEmbedder()
FLT = SearchFilter("t1")


def _chunk(cid: str, text: str, doc: str = "d1") -> Chunk:
    return Chunk(cid, doc, "t1", f"{doc}.md", text, (0, len(text)), cid)


def _write(index: EmbeddedIndex, doc: str, *texts: str) -> None:
    chunks = [_chunk(f"{doc}-{i}", t, doc) for i, t in enumerate(texts)]
    record = DocumentRecord("t1", doc, f"{doc}.md", "h", EMB.model_name)
    index.replace_document(record, chunks, EMB.embed_documents(list(texts)))


def _kw(index: EmbeddedIndex, query: str) -> list[str]:
    return [h.chunk.chunk_id for h in index.keyword_search(query, FLT, 10)]


def _vec(index: EmbeddedIndex, query: str) -> list[str]:
    return [h.chunk.chunk_id for h in index.vector_search(EMB.embed_query(query), FLT, 10)]


def test_a_second_handle_follows_inserts_replacements_and_deletes(tmp_path: Path) -> None:
    writer = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    reader = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    try:
        _write(writer, "a", "alpha walrus", "alpha penguin")
        assert sorted(_kw(reader, "alpha")) == ["a-0", "a-1"]
        assert set(_vec(reader, "alpha walrus")) == {"a-0", "a-1"}
        _write(writer, "a", "gamma walrus")  # replace: the old chunks must vanish everywhere
        assert _kw(reader, "alpha") == []
        assert _kw(reader, "walrus") == ["a-0"]
        assert _vec(reader, "alpha walrus") == ["a-0"]
        writer.delete_document("t1", "a")
        assert _kw(reader, "walrus") == [] and _vec(reader, "walrus") == []
    finally:
        writer.close()
        reader.close()


def test_keyword_index_is_rebuilt_when_its_files_are_lost(tmp_path: Path) -> None:
    index = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    _write(index, "a", "alpha walrus")
    index.flush()
    index.close()
    shutil.rmtree(tmp_path / "i.tantivy")
    index = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    try:
        assert _kw(index, "walrus") == ["a-0"]
    finally:
        index.close()


def test_flush_brings_the_keyword_index_up_to_date(tmp_path: Path) -> None:
    index = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    try:
        _write(index, "a", "alpha walrus")
        db = sqlite3.connect(tmp_path / "i.sqlite")
        state = changelog.log_state(db)
        assert state.keyword_seq < state.head
        index.flush()
        state = changelog.log_state(db)
        assert state.keyword_seq == state.head
        db.close()
    finally:
        index.close()


def test_a_reader_behind_the_pruned_log_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changelog, "RETAIN", 1)
    writer = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    reader = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim)
    try:
        _write(writer, "a", "alpha walrus")
        assert _vec(reader, "alpha walrus") == ["a-0"]
        for doc in "bcd":
            _write(writer, doc, f"{doc} filler text")
        writer.delete_document("t1", "a")
        writer.flush()  # catches the keyword index up and prunes the log behind it
        db = sqlite3.connect(tmp_path / "i.sqlite")
        assert changelog.log_state(db).pruned_through > 0
        db.close()
        assert "a-0" not in _vec(reader, "alpha walrus")
        assert len(_vec(reader, "filler")) == 3
    finally:
        writer.close()
        reader.close()


def test_hnsw_graph_is_saved_and_reused(tmp_path: Path) -> None:
    options = {"ann_threshold": 1, "exact_limit": 0}
    index = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim, **options)
    _write(index, "a", "alpha walrus", "beta penguin", "gamma seal")
    _write(index, "b", "delta orca")
    assert index.build_graph() == 4
    _write(index, "a", "alpha walrus", "beta penguin")  # leaves a dead graph position
    before = _vec(index, "beta penguin")
    index.close()
    assert (tmp_path / "i.hnsw").exists()
    index = EmbeddedIndex(tmp_path / "i.sqlite", dim=EMB.dim, **options)
    try:
        after = _vec(index, "beta penguin")
        assert after[0] == before[0] == "a-1" and sorted(after) == sorted(before)
        assert index.build_graph() == 6  # 4 saved positions reused, 2 new ones added
    finally:
        index.close()


def test_a_store_from_before_the_change_log_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    vector = EMB.embed_documents(["alpha walrus"])[0]
    db.execute(
        "INSERT INTO chunks(chunk_id, doc_id, tenant_id, source, text, span_start, span_end, "
        "content_hash, acl, heading, page, vector) VALUES "
        "('a-0','a','t1','a.md','alpha walrus',0,12,'h','[]','',NULL,?)",
        (np.asarray(vector, np.float32).tobytes(),),
    )
    db.commit()
    db.close()
    index = EmbeddedIndex(path, dim=EMB.dim)
    try:
        assert _kw(index, "walrus") == ["a-0"]
        assert _vec(index, "alpha walrus") == ["a-0"]
        _write(index, "b", "beta walrus")
        assert sorted(_kw(index, "walrus")) == ["a-0", "b-0"]
    finally:
        index.close()


OLD_SCHEMA = """
CREATE TABLE chunks (
    rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL,
    span_start INTEGER NOT NULL, span_end INTEGER NOT NULL, content_hash TEXT NOT NULL,
    acl TEXT NOT NULL, heading TEXT NOT NULL, page INTEGER, vector BLOB
);
CREATE INDEX chunks_doc ON chunks(tenant_id, doc_id);
CREATE TABLE chunk_acl (grp TEXT NOT NULL, chunk_rowid INTEGER NOT NULL,
    PRIMARY KEY (grp, chunk_rowid)) WITHOUT ROWID;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='rowid', tokenize='porter unicode61');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.rowid, new.text, new.heading);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.rowid, old.text, old.heading);
    DELETE FROM chunk_acl WHERE chunk_rowid = old.rowid;
END;
CREATE TABLE documents (tenant_id TEXT NOT NULL, doc_id TEXT NOT NULL, source TEXT NOT NULL,
    content_hash TEXT NOT NULL, embed_model TEXT NOT NULL, index_version TEXT NOT NULL DEFAULT '',
    chunk_ids TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (tenant_id, doc_id));
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta(key, value) VALUES ('generation', 0);
"""


def test_keyword_index_deletes_touched_rows_itself(tmp_path: Path) -> None:
    from app.retrieval.embedded.keyword import KeywordRow, TantivyKeywords

    index = TantivyKeywords(tmp_path / "kw")
    rows = [KeywordRow(i, "t1", (), f"alpha {i}", "") for i in (1, 2, 3)]
    index.apply(None, rows)
    index.apply([1, 3], [])  # 1 and 3 were deleted from SQLite
    assert [r for r, _ in index.search("alpha", "t1", frozenset(), 10)] == [2]
    index.apply([2], [KeywordRow(2, "t1", ("hr",), "beta", "")])  # replaced in place
    assert index.search("alpha", "t1", frozenset({"hr"}), 10) == []
    assert index.search("beta", "t1", frozenset(), 10) == []
    assert [r for r, _ in index.search("beta", "t1", frozenset({"hr"}), 10)] == [2]
