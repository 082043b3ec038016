"""The connector interface: what every source hands the sync (:mod:`app.sources.sync`).

A source is a few dozen lines: it lists the items changed since a cursor, and the ids of
every item it holds now (so that deletions at the source reach the index).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Connector", "SourceItem"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceItem:
    """One item of a source, as the index will hold it."""

    item_id: str
    """Stable at the source: the same row or page keeps it across syncs."""
    text: str
    title: str = ""
    version: str = ""
    """The item's updated-at (or another value that grows with each change), as a string
    the connector can compare with a cursor; empty where the source has none."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Extra fields, indexed with the text; a change re-indexes the item."""
    acl: tuple[str, ...] = ()
    """Groups allowed to read the item; empty means every user of the tenant."""
    unchanged: bool = False
    """The source knows the item has not changed since the last finished sync (a web
    page's 304): its document stays as it is and ``text`` is not read."""
    failure: str = ""
    """Why the item could not be read now (it is reported; its document, if any, stays
    unless the item is also missing from :meth:`Connector.ids`)."""


class Connector(Protocol):
    """A source the sync reads."""

    @property
    def name(self) -> str:
        """The source's configured name; it scopes the items' ids in the index."""
        ...

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        """Yield the items changed at or after ``cursor`` (every item when None).

        Items come in ascending ``version`` order, so a cursor taken from the last item
        of a sync covers every item before it.
        """
        ...

    def ids(self) -> Iterator[str]:
        """Yield the id of every item the source holds now."""
        ...
