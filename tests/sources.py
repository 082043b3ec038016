"""One scenario every SQL source is tested with: insert, update, delete, ACL change, crash."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass

import sqlalchemy as sa

from app.resources import Resources
from app.retrieval.types import SearchFilter
from app.sources.connector import SourceItem
from app.sources.cursors import CursorStore
from app.sources.sql import SqlSource
from app.sources.sync import SourceSync

TENANT = "t1"

CREATE = """
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category TEXT,
    groups TEXT,
    updated_at TIMESTAMP NOT NULL
)
"""


def make_sync(resources: Resources) -> SourceSync:
    return SourceSync(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=60,
        chunk_overlap=8,
        cursors=CursorStore(resources.settings.data_dir / "sources.sqlite"),
    )


def articles(url: str) -> SqlSource:
    return SqlSource(
        name="kb",
        url=url,
        query="SELECT id, title, body, category, groups, updated_at FROM articles",
        id_column="id",
        title_column="title",
        text_columns=["body"],
        metadata_columns=["category"],
        acl_column="groups",
        updated_at_column="updated_at",
    )


def visible(resources: Resources, word: str, *groups: str) -> list[str]:
    """The sources of the chunks ``groups`` find by keyword ``word``."""
    hits = resources.retriever.keywords.search(  # type: ignore[attr-defined]
        word, SearchFilter(TENANT, frozenset(groups)), 10
    )
    return sorted({hit.chunk.source for hit in hits})


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


@dataclass(frozen=True)
class Crashing:
    """A source whose listing breaks after ``after`` items (a connection lost mid-sync)."""

    inner: SqlSource
    after: int

    @property
    def name(self) -> str:
        return self.inner.name

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        with closing(self.inner.changed(cursor)) as items:
            for number, item in enumerate(items):
                if number == self.after:
                    raise ConnectionError("server closed the connection unexpectedly")
                yield item

    def ids(self) -> Iterator[str]:
        return self.inner.ids()


def scenario(resources: Resources, url: str) -> None:
    """Insert, update, delete and an ACL change each reach retrieval after one sync."""
    execute(
        url,
        CREATE,
        "INSERT INTO articles VALUES (1, 'Kettles', 'descale the kettle monthly', 'home',"
        " NULL, '2026-01-01 10:00:00')",
        "INSERT INTO articles VALUES (2, 'Payroll', 'salary bands are confidential', 'hr',"
        " 'hr', '2026-01-01 11:00:00')",
        "INSERT INTO articles VALUES (3, 'Bikes', 'oil the bicycle chain', 'home',"
        " 'staff,hr', '2026-01-01 12:00:00')",
    )
    sync = make_sync(resources)
    source = articles(url)
    first = sync.sync(source, tenant_id=TENANT)
    assert (first.indexed, first.unchanged, first.deleted) == (3, 0, 0)
    assert visible(resources, "kettle") == ["source:kb/1"]
    assert visible(resources, "salary") == []  # ACL: not for everyone
    assert visible(resources, "salary", "hr") == ["source:kb/2"]
    assert visible(resources, "bicycle", "staff") == ["source:kb/3"]
    assert visible(resources, "home") == ["source:kb/1"]  # metadata is indexed

    again = sync.sync(source, tenant_id=TENANT)
    assert (again.indexed, again.deleted) == (0, 0)

    execute(
        url,
        "UPDATE articles SET body = 'descale the teapot weekly',"
        " updated_at = '2026-02-01 10:00:00' WHERE id = 1",
        "UPDATE articles SET groups = 'finance', updated_at = '2026-02-01 11:00:00' WHERE id = 2",
        "DELETE FROM articles WHERE id = 3",
        "INSERT INTO articles VALUES (4, 'Plants', 'water the ficus', 'home', NULL,"
        " '2026-02-01 12:00:00')",
    )
    second = sync.sync(source, tenant_id=TENANT)
    assert (second.indexed, second.deleted) == (3, 1)
    assert visible(resources, "monthly") == []
    assert visible(resources, "teapot") == ["source:kb/1"]
    assert visible(resources, "salary", "hr") == []
    assert visible(resources, "salary", "finance") == ["source:kb/2"]
    assert visible(resources, "bicycle", "staff", "hr") == []
    assert visible(resources, "ficus") == ["source:kb/4"]


def crash_scenario(resources: Resources, url: str) -> None:
    """A sync that dies mid-way shows whole documents only; the next run finishes it."""
    rows = ", ".join(
        f"({n}, 'Note {n}', 'entry number{n} ' || '{'word ' * 150}', NULL, NULL,"
        f" '2026-03-01 10:{n:02d}:00')"
        for n in range(1, 7)
    )
    execute(url, CREATE, f"INSERT INTO articles VALUES {rows}")
    sync = make_sync(resources)
    source = articles(url)
    try:
        sync.sync(Crashing(source, after=3), tenant_id=TENANT)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the crash did not happen")
    writer = resources.writer
    written = writer.documents(TENANT)
    assert len(written) <= 3
    for record in written:  # each document visible is whole
        assert len(record.chunk_ids) > 1
        assert len(visible(resources, f"number{record.source.rsplit('/', 1)[1]}")) == 1
    assert sync.cursors.get(TENANT, "kb") is None  # the cursor did not move
    finished = sync.sync(source, tenant_id=TENANT)
    assert finished.indexed == 6 - len(written)
    assert finished.unchanged == len(written)
    assert len(writer.documents(TENANT)) == 6
    for n in range(1, 7):
        assert visible(resources, f"number{n}") == [f"source:kb/{n}"]


def late_commit_scenario(resources: Resources, url: str) -> None:
    """A row committed after a sync with an older updated-at, within the look-back, is found.

    The cursor alone (``updated_at >= cursor``) misses it: its transaction began, and
    took its timestamp, before the row the cursor was read from was committed.
    """
    execute(
        url,
        CREATE,
        "INSERT INTO articles VALUES (1, 'Kettles', 'descale the kettle monthly', 'home',"
        " NULL, '2026-01-01 10:00:00')",
    )
    sync = make_sync(resources)
    source = articles(url)  # lookback_s: 60 s by default
    assert sync.sync(source, tenant_id=TENANT).indexed == 1
    execute(
        url,
        "INSERT INTO articles VALUES (2, 'Bikes', 'oil the bicycle chain', 'home', NULL,"
        " '2026-01-01 09:59:30')",  # 30 s before the cursor: committed late
        "INSERT INTO articles VALUES (3, 'Plants', 'water the ficus', 'home', NULL,"
        " '2026-01-01 09:58:00')",  # 2 minutes before: past the window
    )
    again = sync.sync(source, tenant_id=TENANT)
    assert (again.indexed, again.unchanged) == (1, 1)  # the row read again costs no embedding
    assert visible(resources, "bicycle") == ["source:kb/2"]
    assert visible(resources, "ficus") == []
    assert sync.cursors.get(TENANT, "kb").cursor in ("2026-01-01 10:00:00", "2026-01-01T10:00:00")
