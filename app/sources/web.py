"""Web pages as a source: a sitemap, or a bounded crawl from seed URLs.

Each page is one item, its URL the id. robots.txt is honoured (with its Crawl-delay, up to
a bound), links are followed only to the source's hosts, and every request goes through
:class:`~app.sources.web_fetch.PageFetcher` (host allowlist, no private addresses unless
listed, size and time limits). A page fetched before is asked for conditionally
(If-None-Match / If-Modified-Since); a 304, or a sitemap ``<lastmod>`` unchanged since the
last crawl, keeps its document as it is. A page that answers 404/410, is disallowed or
leaves the sitemap is not among the source's ids, so the sync deletes its document; a
transient failure (5xx, timeout) keeps it.
"""

from __future__ import annotations

import time
import urllib.robotparser
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field

import httpx

from app.ingest.loaders import LoadError
from app.ingest.loaders.markup import MAX_DEPTH
from app.sources.connector import SourceItem
from app.sources.web_fetch import Fetched, PageFetcher
from app.sources.web_pages import Pages, PageState, new_generation
from app.sources.web_parse import SitemapError, canonical, read_page, read_sitemap
from app.tools.http import host_allowed

__all__ = ["WebSource", "WebSourceError"]

_MAX_SITEMAPS = 50


class WebSourceError(ValueError):
    """The source's configuration is not usable."""


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path="/", query=None, fragment=None))


@dataclass
class _Robots:
    """One origin's robots.txt: its rules, or None while it cannot be read (5xx)."""

    rules: urllib.robotparser.RobotFileParser | None
    delay_s: float = 0.0
    last_request: float = 0.0
    problem: str = ""
    """Why it cannot be read for now (while ``rules`` is None)."""


@dataclass
class _Crawl:
    """The state of one crawl."""

    old: dict[str, PageState]
    fresh: dict[str, PageState] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)
    visited: set[str] = field(default_factory=set)
    robots: dict[str, _Robots] = field(default_factory=dict)

    def keep(self, url: str, lastmod: str = "") -> None:
        """Keep the page as the last crawl left it (its document stays)."""
        prev = self.old[url]
        self.live.add(url)
        self.fresh[url] = PageState(prev.etag, prev.last_modified, lastmod, prev.links)


@dataclass(kw_only=True)
class WebSource:
    """Pages of a site (or a few), found from a sitemap or by following links."""

    name: str
    store: Pages
    sitemap: str | None = None
    seeds: Sequence[str] = ()
    hosts: Sequence[str] = ()
    """``host`` or ``host:port`` entries; empty: the hosts of ``sitemap`` and ``seeds``."""
    private_hosts: Sequence[str] = ()
    """Hosts allowed to resolve to private or loopback addresses (an intranet, tests)."""
    acl: Sequence[str] = ()
    max_pages: int = 500
    max_depth: int = 2
    """Links followed from the seeds (sitemap pages are not followed)."""
    user_agent: str = "ragent"
    max_crawl_delay_s: float = 5.0
    max_page_bytes: int = 2_000_000
    request_timeout_s: float = 10.0
    crawl_timeout_s: float = 600.0
    max_nesting: int = MAX_DEPTH
    _live: set[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        """Check the URLs and fill ``hosts`` from them when empty.

        Raises:
            WebSourceError: No sitemap and no seeds, or one that is not an http(s) URL.
        """
        starts = [self.sitemap] if self.sitemap else []
        starts += list(self.seeds)
        if not starts:
            raise WebSourceError(f"source {self.name!r}: give a sitemap or seeds")
        for url in starts:
            if canonical(url) is None:
                raise WebSourceError(f"source {self.name!r}: {url!r} is not an http(s) URL")
        if not self.hosts:
            self.hosts = sorted({httpx.URL(u).netloc.decode("ascii").lower() for u in starts})

    @property
    def _acl(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.acl)))

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        """Crawl; yield each page fetched (changed), kept (unchanged) or failed.

        ``cursor`` names the generation of page states the last finished sync left; every
        item carries the new one as its version, which becomes the cursor.
        """
        self._live = None
        self.store.forget(self.name, keep=cursor)
        crawl = _Crawl(old=self.store.load(self.name, cursor) if cursor else {})
        generation = new_generation()
        fetcher = PageFetcher(
            hosts=list(self.hosts),
            private_hosts=list(self.private_hosts),
            user_agent=self.user_agent,
            max_bytes=self.max_page_bytes,
            timeout_s=self.request_timeout_s,
        )
        deadline = time.monotonic() + self.crawl_timeout_s
        try:
            # Seeds first (their links are followed), then the sitemap's pages (not followed).
            starts = {str(canonical(seed)): (0, "") for seed in self.seeds}
            if self.sitemap:
                pages, problem = self._read_sitemaps(fetcher)
                if problem:  # the page set is unknown: every page stays
                    yield self._failed(self.sitemap, problem, generation)
                    for url in crawl.old:
                        crawl.keep(url, crawl.old[url].lastmod)
                for url, lastmod in pages.items():
                    starts.setdefault(url, (-1, lastmod))
            frontier = deque((url, depth, lastmod) for url, (depth, lastmod) in starts.items())
            queued = set(starts)
            while frontier and len(crawl.visited) < self.max_pages:
                if time.monotonic() > deadline:
                    yield self._failed(frontier[0][0], "crawl_timeout_s reached", generation)
                    for url in set(crawl.old) - crawl.visited - crawl.live:
                        crawl.keep(url, crawl.old[url].lastmod)
                    break
                url, depth, lastmod = frontier.popleft()
                crawl.visited.add(url)
                item, links = self._visit(fetcher, crawl, url, lastmod, generation)
                if item is not None:
                    yield item
                if depth < self.max_depth and depth >= 0:
                    for link in links:
                        if link not in queued:
                            queued.add(link)
                            frontier.append((link, depth + 1, ""))
            if frontier and len(crawl.visited) >= self.max_pages:
                left = f"max_pages ({self.max_pages}) reached; not crawled: {len(frontier)}"
                yield self._failed(frontier[0][0], left, generation)
            self.store.save(self.name, generation, crawl.fresh)
        finally:
            fetcher.close()
        self._live = crawl.live

    def ids(self) -> Iterator[str]:
        """Yield the URL of every page the last crawl found (or kept after a failure).

        Raises:
            RuntimeError: No crawl finished in this process (:meth:`changed` comes first).
        """
        if self._live is None:
            raise RuntimeError(f"source {self.name!r}: ids() before a finished crawl")
        return iter(sorted(self._live))

    def _read_sitemaps(self, fetcher: PageFetcher) -> tuple[dict[str, str], str]:
        """The sitemap's pages (URL to lastmod), and why it could not be read ("" if it was)."""
        todo, read, pages = deque([str(self.sitemap)]), 0, []
        while todo:
            url = todo.popleft()
            if read >= _MAX_SITEMAPS:
                return {}, f"more than {_MAX_SITEMAPS} sitemaps"
            read += 1
            got = fetcher.get(url, xml=True)
            if got.outcome != "ok":
                return {}, f"sitemap {url}: {got.reason or got.outcome}"
            try:
                sitemap = read_sitemap(got.body)
            except SitemapError as exc:
                return {}, f"sitemap {url}: {exc}"
            todo.extend(u for u in (canonical(s, url) for s in sitemap.sitemaps) if u)
            pages += [(u, lastmod) for loc, lastmod in sitemap.pages if (u := canonical(loc))]
        return dict(pages), ""

    def _visit(
        self, fetcher: PageFetcher, crawl: _Crawl, url: str, lastmod: str, generation: str
    ) -> tuple[SourceItem | None, Sequence[str]]:
        """Fetch (or keep) one page: the item to yield and the links to follow."""
        prev = crawl.old.get(url)
        robots = self._robots(fetcher, crawl, url)
        # A page that cannot be read for now stays as it was, and so do the pages found
        # through it (its links from the last crawl are followed).
        if robots.rules is None:
            problem = f"robots.txt: {robots.problem}"
            if prev is None:
                return self._failed(url, problem, generation), ()
            crawl.keep(url, lastmod)
            return self._failed(url, f"{problem} (kept)", generation), prev.links
        if not robots.rules.can_fetch(self.user_agent, url):
            return None, ()
        if prev is not None and lastmod and lastmod == prev.lastmod:
            crawl.keep(url, lastmod)
            return self._unchanged(url, generation), prev.links
        wait = robots.last_request + robots.delay_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        robots.last_request = time.monotonic()
        if prev is not None:
            got = fetcher.get(url, etag=prev.etag, last_modified=prev.last_modified)
        else:
            got = fetcher.get(url)
        if got.outcome == "not_modified" and prev is not None:
            crawl.keep(url, lastmod)
            return self._unchanged(url, generation), prev.links
        if got.outcome == "gone":
            return None, ()
        if got.outcome == "transient" and prev is not None:
            crawl.keep(url, lastmod)
            return self._failed(url, f"{got.reason} (kept)", generation), prev.links
        if got.outcome != "ok":
            return self._failed(url, got.reason or got.outcome, generation), ()
        return self._page(crawl, url, got, lastmod, generation)

    def _page(
        self, crawl: _Crawl, url: str, got: Fetched, lastmod: str, generation: str
    ) -> tuple[SourceItem | None, Sequence[str]]:
        try:
            page = read_page(got.body, got.content_type, url, max_depth=self.max_nesting)
        except LoadError as exc:
            return self._failed(url, str(exc), generation), ()
        links = [u for u in page.links if httpx.URL(u).host and self._on_hosts(u)]
        crawl.live.add(url)
        crawl.fresh[url] = PageState(got.etag, got.last_modified, lastmod, tuple(links))
        metadata = {"url": url, "title": page.title, "last_modified": got.last_modified}
        item = SourceItem(
            item_id=url,
            text=page.text,
            title=page.title,
            version=generation,
            metadata={k: v for k, v in metadata.items() if v},
            acl=self._acl,
        )
        return item, links

    def _on_hosts(self, url: str) -> bool:
        return host_allowed(httpx.URL(url), list(self.hosts))

    def _robots(self, fetcher: PageFetcher, crawl: _Crawl, url: str) -> _Robots:
        """The robots.txt rules of ``url``'s origin, read once per crawl."""
        origin = _origin(url)
        if origin not in crawl.robots:
            got = fetcher.get(origin + "robots.txt")
            rules: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
            delay = 0.0
            if got.outcome == "transient":
                rules = None
            elif got.outcome == "ok" and rules is not None:
                rules.parse(got.body.decode("utf-8", errors="replace").splitlines())
                found = rules.crawl_delay(self.user_agent)
                delay = min(float(found or 0), self.max_crawl_delay_s)
            elif rules is not None:  # none, or 4xx: no rules (RFC 9309)
                rules.parse([])
            crawl.robots[origin] = _Robots(rules, delay, problem=got.reason)
        return crawl.robots[origin]

    def _unchanged(self, url: str, generation: str) -> SourceItem:
        return SourceItem(item_id=url, text="", version=generation, unchanged=True)

    def _failed(self, url: str, reason: str, generation: str) -> SourceItem:
        return SourceItem(item_id=url, text="", version=generation, failure=reason)
