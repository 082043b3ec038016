"""A SQL database as a source, through SQLAlchemy (PostgreSQL, SQLite, any dialect it has).

The configured query is wrapped, never edited: incremental syncs read
``SELECT * FROM (<query>) AS src WHERE src.<updated_at> >= :cursor ORDER BY src.<updated_at>``
(the cursor moved ``lookback_s`` back, for rows committed late) and deletions are found
from ``SELECT src.<id> FROM (<query>) AS src``. Column names are checked as plain
identifiers and quoted by the dialect; the cursor is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.sources.connector import SourceItem

__all__ = ["SqlSource", "SqlSourceError", "looked_back"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SqlSourceError(ValueError):
    """The source's configuration is not usable."""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def looked_back(cursor: str, seconds: float) -> str:
    """``cursor`` moved ``seconds`` earlier, written as it was (a date, a date and time).

    A cursor that is not an ISO date or date and time (a version number) is returned as
    it is.
    """
    if seconds <= 0:
        return cursor
    try:
        moment = datetime.fromisoformat(cursor)
    except ValueError:
        return cursor
    if len(cursor) == 10:  # a date: the day before
        return (moment.date() - timedelta(days=max(1, int(seconds // 86400)))).isoformat()
    sep = cursor[10] if len(cursor) > 10 else "T"
    spec = "microseconds" if "." in cursor[10:] else "seconds"
    # Whole seconds are dropped when the cursor has none: the window only grows.
    return (moment - timedelta(seconds=seconds)).isoformat(sep=sep, timespec=spec)


def _groups(value: object) -> tuple[str, ...]:
    """ACL groups from an array column or a comma-separated string."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(sorted({str(g).strip() for g in items if str(g).strip()}))


@dataclass(frozen=True, kw_only=True)
class SqlSource:
    """Rows of a query as items: one row, one item."""

    name: str
    url: str
    """A SQLAlchemy URL (``postgresql+psycopg://...``, ``sqlite:///path``)."""
    query: str
    id_column: str
    text_columns: Sequence[str]
    title_column: str | None = None
    metadata_columns: Sequence[str] = ()
    acl_column: str | None = None
    """An array or comma-separated column of the groups that may read the row."""
    updated_at_column: str | None = None
    """Rows are read incrementally by it; without it every sync reads every row."""
    batch_rows: int = 500
    timeout_s: float = 30.0
    """How long a connection attempt may take."""
    lookback_s: float = 60.0
    """Read the rows updated up to this long before the cursor too (rows committed late
    with an older updated-at); the sync's hash skip leaves those already indexed alone."""

    def __post_init__(self) -> None:
        """Check names before any query is built from them.

        Raises:
            SqlSourceError: A column or the source's name is not a plain identifier, or no
                text column is given.
        """
        if not _SOURCE_NAME.fullmatch(self.name):
            raise SqlSourceError(f"source name {self.name!r}: letters, digits, '_', '.', '-'")
        if not self.text_columns:
            raise SqlSourceError(f"source {self.name!r}: text_columns is empty")
        columns = [self.id_column, *self.text_columns, *self.metadata_columns]
        columns += [c for c in (self.title_column, self.acl_column, self.updated_at_column) if c]
        for column in columns:
            if not _NAME.fullmatch(column):
                raise SqlSourceError(f"source {self.name!r}: {column!r} is not a column name")

    def _engine(self) -> sa.Engine:
        connect_args: dict[str, Any] = {}
        if self.url.startswith("postgresql"):
            connect_args["connect_timeout"] = max(1, int(self.timeout_s))
        elif self.url.startswith("sqlite"):
            connect_args["timeout"] = self.timeout_s
        return sa.create_engine(self.url, connect_args=connect_args, poolclass=sa.NullPool)

    def _column(self, engine: sa.Engine, name: str) -> str:
        return f"src.{engine.dialect.identifier_preparer.quote(name)}"

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        """Yield the rows updated at or after ``cursor``, oldest first (every row if None).

        The cursor is moved ``lookback_s`` earlier first.
        """
        engine = self._engine()
        sql = f"SELECT * FROM ({self.query}) AS src"  # noqa: S608 - the operator's query
        params: dict[str, object] = {}
        if self.updated_at_column:
            column = self._column(engine, self.updated_at_column)
            if cursor is not None:
                sql += f" WHERE {column} >= :cursor"
                params["cursor"] = looked_back(cursor, self.lookback_s)
            sql += f" ORDER BY {column}"
        try:
            with (
                engine.connect() as conn,
                closing(
                    conn.execution_options(yield_per=self.batch_rows).execute(sa.text(sql), params)
                ) as result,
            ):
                for row in result.mappings():
                    yield self._item(row)
        finally:
            engine.dispose()

    def ids(self) -> Iterator[str]:
        """Yield the id of every row the query returns now."""
        engine = self._engine()
        sql = f"SELECT {self._column(engine, self.id_column)} FROM ({self.query}) AS src"
        try:
            with (
                engine.connect() as conn,
                closing(
                    conn.execution_options(yield_per=self.batch_rows * 10).execute(sa.text(sql))
                ) as result,
            ):
                for (value,) in result:
                    yield _text(value)
        finally:
            engine.dispose()

    def _item(self, row: sa.RowMapping) -> SourceItem:
        try:
            return SourceItem(
                item_id=_text(row[self.id_column]),
                text="\n\n".join(_text(row[c]) for c in self.text_columns if row[c] is not None),
                title=_text(row[self.title_column]) if self.title_column else "",
                version=_text(row[self.updated_at_column]) if self.updated_at_column else "",
                metadata={c: _text(row[c]) for c in self.metadata_columns if row[c] is not None},
                acl=_groups(row[self.acl_column]) if self.acl_column else (),
            )
        except KeyError as exc:
            raise SqlSourceError(
                f"source {self.name!r}: the query returns no column {exc.args[0]!r}"
            ) from None
