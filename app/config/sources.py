"""Settings of the sources beyond files (``sources:``, a list)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from app.config.section import Section

__all__ = ["SourceSettings", "SqlSourceSettings", "WebSourceSettings"]


class SqlSourceSettings(Section):
    """A SQL database read through a query (app/sources/sql.py)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: Literal["sql"] = "sql"
    url: str = Field(min_length=1)
    """A SQLAlchemy URL: ``postgresql+psycopg://user@host/db``, ``sqlite:///path``."""
    query: str = Field(min_length=1)
    id_column: str
    text_columns: list[str] = Field(min_length=1)
    title_column: str | None = None
    metadata_columns: list[str] = []
    acl_column: str | None = None
    updated_at_column: str | None = None
    tenant_id: str | None = None
    """Whose index it feeds; None: the settings' ``tenant_id``."""
    timeout_s: float = Field(default=30.0, gt=0)
    lookback_s: float = Field(default=60.0, ge=0)
    """An incremental sync also reads the rows updated up to this long before the last
    sync's cursor: a row committed late with an older ``updated_at`` is still found (the
    hash skip keeps the rows read again cheap). Applies to date and time cursors."""
    every_s: float | None = Field(default=None, ge=1)
    """Sync every this many seconds in ``ragent serve`` and ``ragent worker`` (one sync of
    the source at a time across them); None: only when asked (CLI or HTTP)."""


class WebSourceSettings(Section):
    """Web pages, from a sitemap or a bounded crawl from seed URLs (app/sources/web.py)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: Literal["web"]
    sitemap: str | None = None
    """A sitemap or sitemap index URL: its pages are the source (links are not followed)."""
    seeds: list[str] = []
    """Pages the crawl starts from; links are followed ``max_depth`` deep."""
    hosts: list[str] = []
    """``host`` or ``host:port`` entries requests may go to (redirects included); empty:
    the hosts of ``sitemap`` and ``seeds``."""
    private_hosts: list[str] = []
    """Hosts allowed to resolve to loopback or private addresses (an intranet); any other
    host that does is refused, as a redirect to a host off ``hosts`` is."""
    acl: list[str] = []
    """Groups allowed to read the pages; empty: every user of the tenant."""
    tenant_id: str | None = None
    """Whose index it feeds; None: the settings' ``tenant_id``."""
    max_pages: int = Field(default=500, ge=1, le=100_000)
    max_depth: int = Field(default=2, ge=0, le=20)
    user_agent: str = Field(default="ragent", min_length=1, max_length=200)
    """Sent with every request and matched against robots.txt."""
    max_crawl_delay_s: float = Field(default=5.0, ge=0)
    """robots.txt's Crawl-delay is honoured up to this many seconds between requests."""
    max_page_bytes: int = Field(default=2_000_000, ge=1024)
    """A larger page (or sitemap) is skipped and reported; the download stops there."""
    request_timeout_s: float = Field(default=10.0, gt=0)
    crawl_timeout_s: float = Field(default=600.0, gt=0)
    """Past it the crawl stops, keeps the pages it did not reach and reports it."""
    every_s: float | None = Field(default=None, ge=1)
    """Sync every this many seconds, as for a SQL source; None: only when asked."""


def _kind(value: Any) -> str:
    """A source's ``kind``; ``sql`` where it is left out."""
    kind = value.get("kind", "sql") if isinstance(value, dict) else getattr(value, "kind", "sql")
    return str(kind)


SourceSettings = Annotated[
    Annotated[SqlSourceSettings, Tag("sql")] | Annotated[WebSourceSettings, Tag("web")],
    Discriminator(_kind),
]
"""One entry of ``sources:``, told apart by its ``kind`` (``sql`` when left out)."""
