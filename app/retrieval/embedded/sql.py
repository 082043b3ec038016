"""SQL for the embedded index: schema, migration, row mapping and ACL clauses."""

from __future__ import annotations

import json
import sqlite3

from app.retrieval.types import Chunk, SearchFilter

__all__ = [
    "COLUMNS",
    "COPY_FROM_V1",
    "MIGRATE_FROM_V1",
    "SCHEMA",
    "SCHEMA_VERSION",
    "acl_clause",
    "row_to_chunk",
]

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
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
-- Every insert and delete of a chunk is logged, so the derived indexes (tantivy on
-- disk, dense vectors in each process's memory) catch up incrementally.
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_rowid INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS chunks_logged_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO changes(chunk_rowid) VALUES (new.rowid);
END;
CREATE TRIGGER IF NOT EXISTS chunks_logged_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunk_acl WHERE chunk_rowid = old.rowid;
    INSERT INTO changes(chunk_rowid) VALUES (old.rowid);
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
INSERT OR IGNORE INTO meta(key, value) VALUES ('keyword_seq', -1), ('pruned_through', 0);
"""

# Stores written before the change log kept FTS5 tables and reusable rowids.
MIGRATE_FROM_V1 = """
DROP TRIGGER IF EXISTS chunks_ai;
DROP TRIGGER IF EXISTS chunks_ad;
DROP TABLE IF EXISTS chunks_fts;
DROP INDEX IF EXISTS chunks_doc;
ALTER TABLE chunks RENAME TO chunks_v1;
"""
COPY_FROM_V1 = """
INSERT INTO chunks(rowid, chunk_id, doc_id, tenant_id, source, text, span_start, span_end,
                   content_hash, acl, heading, page, vector)
SELECT rowid, chunk_id, doc_id, tenant_id, source, text, span_start, span_end,
       content_hash, acl, heading, page, vector FROM chunks_v1;
DROP TABLE chunks_v1;
DELETE FROM meta WHERE key = 'generation';
"""

COLUMNS = (
    "c.rowid, c.chunk_id, c.doc_id, c.tenant_id, c.source, c.text, c.span_start, "
    "c.span_end, c.content_hash, c.acl, c.heading, c.page"
)


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
