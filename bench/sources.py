"""Source sync throughput: items/s of a database sync, and the time of an unchanged re-sync.

Run from the repository root:

    .venv/bin/python bench/sources.py [--rows 300] [--postgres] [--json]

It fills a table of ``--rows`` synthetic articles (three paragraphs of 60 words each) in a
SQLite file (and, with ``--postgres``, in a PostgreSQL cluster started for the run),
syncs it into a fresh embedded index with the configured embedder, then syncs it again
unchanged. It prints items/s of the first sync and the seconds of the unchanged one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from app.resources import build_resources  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.sources.factory import build_source_sync  # noqa: E402
from app.sources.sql import SqlSource  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402


def fill(url: str, rows: int) -> None:
    """Create and fill the ``articles`` table."""
    rng = random.Random(29)
    words = [f"w{i:04d}" for i in range(4000)]
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT,"
                " groups TEXT, updated_at TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO articles VALUES (:id, :title, :body, :groups, :at)"),
            [
                {
                    "id": n,
                    "title": f"Article {n}",
                    "body": "\n\n".join(" ".join(rng.choices(words, k=60)) for _ in range(3)),
                    "groups": "staff" if n % 2 else None,
                    "at": f"2026-01-01 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
                }
                for n in range(rows)
            ],
        )
    engine.dispose()


def run(url: str, rows: int, label: str) -> dict[str, object]:
    """Sync the table into a fresh index twice; return the figures."""
    fill(url, rows)
    with tempfile.TemporaryDirectory(prefix="ragent-bench-sources-") as data:
        os.environ["RAGENT_DATA_DIR"] = data
        resources = build_resources(load_settings())
        sync = build_source_sync(resources)
        source = SqlSource(
            name="bench",
            url=url,
            query="SELECT * FROM articles",
            id_column="id",
            title_column="title",
            text_columns=["body"],
            acl_column="groups",
            updated_at_column="updated_at",
        )
        started = time.perf_counter()
        first = sync.sync(source, tenant_id="bench")
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = sync.sync(source, tenant_id="bench", full=True)
        unchanged_s = time.perf_counter() - started
    assert first.indexed == rows and again.unchanged == rows, (first, again)
    return {
        "database": label,
        "rows": rows,
        "chunks": first.chunks,
        "embedder": resources.embedder.model_name,
        "sync_s": round(first_s, 2),
        "items_per_s": round(rows / first_s, 1),
        "unchanged_resync_s": round(unchanged_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="ragent-bench-sqlite-") as folder:
        results.append(run(f"sqlite:///{folder}/kb.sqlite", args.rows, "sqlite"))
    if args.postgres:
        with postgres_server() as url:
            results.append(run(url, args.rows, "postgresql"))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(
            f"{r['database']:<10} {r['rows']} rows, {r['chunks']} chunks ({r['embedder']}):"
            f" sync {r['sync_s']} s = {r['items_per_s']} items/s;"
            f" unchanged full re-sync {r['unchanged_resync_s']} s"
        )


if __name__ == "__main__":
    main()
