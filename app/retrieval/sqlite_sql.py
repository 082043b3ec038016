"""SQL for the embedded index: schema, row mapping, FTS5 query and ACL clauses."""

from __future__ import annotations

import json
import re
import sqlite3

from app.retrieval.types import Chunk, SearchFilter

__all__ = ["COLUMNS", "SCHEMA", "acl_clause", "fts_query", "row_to_chunk"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    span_start INTEGER NOT NULL,
    span_end INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    acl TEXT NOT NULL,
    heading TEXT NOT NULL,
    page INTEGER,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(tenant_id, doc_id);
CREATE TABLE IF NOT EXISTS chunk_acl (
    grp TEXT NOT NULL,
    chunk_rowid INTEGER NOT NULL,
    PRIMARY KEY (grp, chunk_rowid)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.rowid, new.text, new.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.rowid, old.text, old.heading);
    DELETE FROM chunk_acl WHERE chunk_rowid = old.rowid;
END;
CREATE TABLE IF NOT EXISTS documents (
    tenant_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    embed_model TEXT NOT NULL,
    index_version TEXT NOT NULL DEFAULT '',
    chunk_ids TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, doc_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', 0);
"""

COLUMNS = (
    "c.rowid, c.chunk_id, c.doc_id, c.tenant_id, c.source, c.text, c.span_start, "
    "c.span_end, c.content_hash, c.acl, c.heading, c.page"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def row_to_chunk(row: sqlite3.Row) -> Chunk:
    """Map a ``chunks`` row (selected with :data:`COLUMNS`) to a :class:`Chunk`."""
    return Chunk(
        chunk_id=row["chunk_id"],
        doc_id=row["doc_id"],
        tenant_id=row["tenant_id"],
        source=row["source"],
        text=row["text"],
        span=(row["span_start"], row["span_end"]),
        content_hash=row["content_hash"],
        acl=tuple(json.loads(row["acl"])),
        heading=row["heading"],
        page=row["page"],
    )


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: every word quoted, OR-ed together."""
    words = dict.fromkeys(w.lower() for w in _WORD.findall(text))
    return " OR ".join(f'"{w}"' for w in words)


def acl_clause(flt: SearchFilter) -> tuple[str, list[str]]:
    """Return the SQL condition (on alias ``c``) and parameters that enforce the ACL."""
    groups = sorted(flt.groups)
    if not groups:
        return "c.acl = '[]'", []
    marks = ",".join("?" * len(groups))
    clause = (
        "(c.acl = '[]' OR EXISTS (SELECT 1 FROM chunk_acl a "
        f"WHERE a.chunk_rowid = c.rowid AND a.grp IN ({marks})))"
    )
    return clause, groups
