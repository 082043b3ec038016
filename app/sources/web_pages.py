"""What the web source remembers of each page between syncs: validators, lastmod, links.

Each crawl writes its pages under a new generation; the generation becomes current only
when the sync's cursor (which names it) is saved, i.e. once the sync has finished. A sync
killed mid-way therefore leaves the previous generation current: the next crawl sends the
old validators, so a page whose new version was never indexed is fetched again, not
answered 304 for a document the index does not hold.

The pages live where the cursor does: ``sources.sqlite`` in the data folder
(:class:`PageStore`), or Redis when ``server.redis_url`` is set (:class:`RedisPageStore`),
so a replica with a fresh data folder sends the validators another replica's crawl left.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.ingest.ids import stable_id

__all__ = ["PageState", "PageStore", "Pages", "RedisPageStore", "new_generation"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_pages (
    source TEXT NOT NULL,
    generation TEXT NOT NULL,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (source, generation, url)
)
"""


@dataclass(frozen=True, slots=True)
class PageState:
    """One page as the last finished crawl left it."""

    etag: str = ""
    last_modified: str = ""
    lastmod: str = ""
    """The sitemap's ``<lastmod>`` for the page, when it gave one."""
    links: tuple[str, ...] = ()
    """The page's links inside the crawl's hosts (followed again when it answers 304)."""


def new_generation() -> str:
    """A generation name that sorts after the earlier ones (it is the sync's cursor)."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def _encode(page: PageState) -> str:
    return json.dumps(
        {
            "etag": page.etag,
            "last_modified": page.last_modified,
            "lastmod": page.lastmod,
            "links": list(page.links),
        }
    )


def _decode(raw: str | bytes) -> PageState:
    data = json.loads(raw)
    return PageState(
        data.get("etag", ""),
        data.get("last_modified", ""),
        data.get("lastmod", ""),
        tuple(data.get("links", ())),
    )


class Pages(Protocol):
    """Page states per (source, generation)."""

    def load(self, source: str, generation: str) -> dict[str, PageState]:
        """Return the pages of ``source`` recorded under ``generation``."""
        ...

    def save(self, source: str, generation: str, pages: Mapping[str, PageState]) -> None:
        """Record ``pages`` under ``generation``, all or none."""
        ...

    def forget(self, source: str, *, keep: str | None) -> None:
        """Drop the source's generations other than ``keep`` (crawls that never finished)."""
        ...


class PageStore:
    """Page states per (source, generation), in a SQLite file."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the store at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with closing(self._connect()) as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30, isolation_level=None)

    def load(self, source: str, generation: str) -> dict[str, PageState]:
        """Return the pages of ``source`` recorded under ``generation``."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT url, state FROM web_pages WHERE source = ? AND generation = ?",
                (source, generation),
            ).fetchall()
        return {url: _decode(raw) for url, raw in rows}

    def save(self, source: str, generation: str, pages: Mapping[str, PageState]) -> None:
        """Record ``pages`` under ``generation``, in one transaction."""
        with closing(self._connect()) as db:
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO web_pages VALUES (?, ?, ?, ?)",
                [(source, generation, url, _encode(page)) for url, page in pages.items()],
            )
            db.execute("COMMIT")

    def forget(self, source: str, *, keep: str | None) -> None:
        """Drop the source's generations other than ``keep`` (crawls that never finished)."""
        with closing(self._connect()) as db:
            db.execute(
                "DELETE FROM web_pages WHERE source = ? AND generation IS NOT ?", (source, keep)
            )


class RedisPageStore:
    """Page states in Redis: one hash per generation, ``ragent:source:<id>:pages:<generation>``.

    ``<id>`` is the (tenant, source) id the sync's status and cursor use.
    """

    def __init__(self, client: Any, tenant_id: str) -> None:
        """Use ``client`` (a synchronous ``redis.Redis``) for the sources of ``tenant_id``."""
        self._r, self._tenant = client, tenant_id

    def _prefix(self, source: str) -> str:
        return f"ragent:source:{stable_id(self._tenant, source)}:pages:"

    def load(self, source: str, generation: str) -> dict[str, PageState]:
        """HGETALL the generation's hash."""
        raw = self._r.hgetall(self._prefix(source) + generation)
        return {
            (url.decode() if isinstance(url, bytes) else url): _decode(state)
            for url, state in raw.items()
        }

    def save(self, source: str, generation: str, pages: Mapping[str, PageState]) -> None:
        """HSET the pages in one transaction."""
        if not pages:
            return
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(
            self._prefix(source) + generation,
            mapping={url: _encode(page) for url, page in pages.items()},
        )
        pipe.execute()

    def forget(self, source: str, *, keep: str | None) -> None:
        """Delete the source's generation hashes other than ``keep``."""
        prefix = self._prefix(source)
        kept = None if keep is None else (prefix + keep).encode()
        stale = [
            key
            for key in self._r.scan_iter(match=prefix + "*", count=100)
            if (key if isinstance(key, bytes) else key.encode()) != kept
        ]
        if stale:
            self._r.delete(*stale)
