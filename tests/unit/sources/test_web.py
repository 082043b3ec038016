"""The web source against a real HTTP server on loopback, through the real index."""

from __future__ import annotations

import socket
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.config.sources import SqlSourceSettings, WebSourceSettings
from app.resources import Resources
from app.settings import Settings, SettingsError
from app.sources.configured import configured_source
from app.sources.connector import SourceItem
from app.sources.sync import SourceSync
from app.sources.web import WebSource
from app.sources.web_fetch import PageFetcher
from app.sources.web_pages import PageStore
from tests.sources import TENANT, make_sync, visible
from tests.web_site import Served, Site, html, serve, small_site


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(small_site()) as running:
        running.pages["/away"] = Served(
            b"", status=302, location=f"http://localhost:{running.port}/kettle.html"
        )
        yield running


def web(site: Site, data: Path, **options: Any) -> WebSource:
    config: dict[str, Any] = {
        "name": "site",
        "store": PageStore(data / "sources.sqlite"),
        "seeds": [site.url("/")],
        "private_hosts": ["127.0.0.1"],
        "acl": ["staff"],
        "max_page_bytes": 50_000,
    }
    return WebSource(**(config | options))


def src(site: Site, path: str) -> str:
    return f"source:site/{site.url(path)}"


def reasons(report: Any) -> dict[str, str]:
    return {f["source"]: f["reason"] for f in report.failed}


def test_a_crawl_indexes_the_site_and_a_re_sync_asks_conditionally(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    sync = make_sync(resources)
    source = web(site, tmp_path)
    first = sync.sync(source, tenant_id=TENANT)
    assert (first.indexed, first.deleted) == (4, 0)  # home, kettle, bikes, plants
    assert visible(resources, "kettle", "staff") == [src(site, "/kettle.html")]
    assert visible(resources, "kettle") == []  # the source's ACL: staff only
    assert visible(resources, "payroll", "staff") == []  # robots.txt disallows /private/
    assert site.seen("/private/salaries.html") == []
    failed = reasons(first)
    assert "larger than 50000 bytes" in failed[src(site, "/big.html")]
    assert "'localhost' is not on the source's hosts" in failed[src(site, "/away")]
    assert site.seen("/kettle.html")[0].status == 200

    again = sync.sync(source, tenant_id=TENANT)
    assert (again.indexed, again.unchanged, again.deleted) == (0, 4, 0)
    (conditional,) = site.seen("/kettle.html")[1:]
    assert conditional.if_none_match == site.pages["/kettle.html"].etag
    assert conditional.if_modified_since
    assert conditional.status == 304
    assert visible(resources, "kettle", "staff") == [src(site, "/kettle.html")]


def test_a_change_a_removal_and_a_failing_page_after_one_sync(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    sync = make_sync(resources)
    source = web(site, tmp_path)
    sync.sync(source, tenant_id=TENANT)
    site.pages["/bikes.html"] = Served(html("Bikes", "Pump the tyres of the tandem."))
    del site.pages["/plants.html"]  # 404 now
    site.pages["/kettle.html"] = Served(b"busy", status=503)
    report = sync.sync(source, tenant_id=TENANT)
    assert (report.indexed, report.deleted) == (1, 1)
    assert visible(resources, "tandem", "staff") == [src(site, "/bikes.html")]
    assert visible(resources, "bicycle", "staff") == []
    assert visible(resources, "ficus", "staff") == []
    # A transient failure keeps the page's document, and says so.
    assert reasons(report)[src(site, "/kettle.html")] == "HTTP 503 (kept)"
    assert visible(resources, "kettle", "staff") == [src(site, "/kettle.html")]
    gone = site.seen("/plants.html")[-1]
    assert gone.status == 404


def test_a_failing_home_page_or_robots_txt_keeps_the_pages_behind_it(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    sync = make_sync(resources)
    source = web(site, tmp_path)
    assert sync.sync(source, tenant_id=TENANT).indexed == 4
    home = site.pages["/"]
    site.pages["/"] = Served(b"down", status=502)
    report = sync.sync(source, tenant_id=TENANT)
    assert (report.deleted, report.unchanged) == (0, 3)  # its links from the last crawl
    assert reasons(report)[src(site, "/")] == "HTTP 502 (kept)"
    site.pages["/"] = home
    site.pages["/robots.txt"] = Served(b"down", status=503)
    report = sync.sync(source, tenant_id=TENANT)
    assert report.deleted == 0
    assert reasons(report)[src(site, "/plants.html")] == "robots.txt: HTTP 503 (kept)"
    assert visible(resources, "ficus", "staff") == [src(site, "/plants.html")]


def test_crawl_delay_is_honoured_up_to_the_bound(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    site.pages["/robots.txt"] = Served(
        b"User-agent: *\nCrawl-delay: 30\nDisallow: /private/\n", content_type="text/plain"
    )
    started = time.monotonic()
    make_sync(resources).sync(web(site, tmp_path, max_crawl_delay_s=0.3), tenant_id=TENANT)
    pages = [r for r in site.requests if r.path != "/robots.txt"]
    assert len(pages) == 6  # home, three pages, the large one and the redirect
    assert time.monotonic() - started >= 5 * 0.3


def test_a_sitemap_lists_the_pages_and_its_lastmod_spares_the_request(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    stamps = {"/kettle.html": "2026-01-01", "/bikes.html": "2026-01-01"}
    site.sitemap(
        "/kettle.html", "/bikes.html", "/plants.html", "/private/salaries.html", lastmod=stamps
    )
    sync = make_sync(resources)
    source = web(site, tmp_path, seeds=[], sitemap=site.url("/sitemap.xml"))
    first = sync.sync(source, tenant_id=TENANT)
    assert first.indexed == 3  # not the disallowed page, and links are not followed
    assert visible(resources, "welcome", "staff") == []
    site.pages["/bikes.html"] = Served(html("Bikes", "Pump the tyres of the tandem."))
    site.sitemap("/kettle.html", "/bikes.html", lastmod={**stamps, "/bikes.html": "2026-02-01"})
    second = sync.sync(source, tenant_id=TENANT)
    assert (second.indexed, second.unchanged, second.deleted) == (1, 1, 1)
    assert len(site.seen("/kettle.html")) == 1  # lastmod unchanged: not asked again
    assert visible(resources, "tandem", "staff") == [src(site, "/bikes.html")]
    assert visible(resources, "ficus", "staff") == []  # left the sitemap
    bounded = sync.sync(
        web(site, tmp_path, seeds=[], sitemap=site.url("/sitemap.xml"), max_pages=1),
        tenant_id=TENANT,
    )
    assert bounded.deleted == 1
    assert reasons(bounded)[src(site, "/bikes.html")] == "max_pages (1) reached; not crawled: 1"


def test_private_addresses_and_redirects_off_the_hosts_are_refused(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    sync = make_sync(resources)
    report = sync.sync(web(site, tmp_path, private_hosts=[]), tenant_id=TENANT)
    assert report.indexed == 0
    assert (
        "resolves to a private or loopback address (127.0.0.1)" in reasons(report)[src(site, "/")]
    )
    assert site.requests == []
    only_kettle = web(site, tmp_path, seeds=[site.url("/away")], name="away")
    report = sync.sync(only_kettle, tenant_id=TENANT)
    assert report.indexed == 0
    assert "not on the source's hosts" in reasons(report)[f"source:away/{site.url('/away')}"]
    assert site.seen("/kettle.html") == []


@dataclass
class Crashing:
    """The web source, dying after ``after`` items (the process killed mid-sync)."""

    inner: WebSource
    after: int

    @property
    def name(self) -> str:
        return self.inner.name

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        with closing(self.inner.changed(cursor)) as items:
            for number, item in enumerate(items):
                if number == self.after:
                    raise KeyboardInterrupt
                yield item

    def ids(self) -> Iterator[str]:
        return self.inner.ids()


def test_a_crawl_killed_mid_way_is_finished_by_the_next(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    for n in range(6):
        site.pages[f"/note{n}.html"] = Served(
            html(f"Note {n}", f"entry number{n} " + "word " * 150)
        )
    site.pages["/"] = Served(html("Home", "index", *(f"/note{n}.html" for n in range(6))))
    sync: SourceSync = make_sync(resources)
    source = web(site, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        sync.sync(Crashing(source, after=4), tenant_id=TENANT)
    written = resources.writer.documents(TENANT)
    assert 0 < len(written) <= 4
    for record in written:  # each document visible is whole
        assert len(record.chunk_ids) >= 1
    assert sync.cursors.get(TENANT, "site") is None
    finished = sync.sync(source, tenant_id=TENANT)
    assert finished.indexed == 7 - len(written)
    assert finished.unchanged == len(written)
    for n in range(6):
        assert visible(resources, f"number{n}", "staff") == [src(site, f"/note{n}.html")]


def test_a_sitemap_index_is_followed_and_a_slow_page_is_kept(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    site.sitemap("/kettle.html", "/bikes.html")
    site.pages["/pages.xml"] = site.pages.pop("/sitemap.xml")
    site.pages["/index.xml"] = Served(
        (
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{site.url('/pages.xml')}</loc></sitemap></sitemapindex>"
        ).encode(),
        content_type="text/xml",
    )
    sync = make_sync(resources)
    source = web(site, tmp_path, seeds=[], sitemap=site.url("/index.xml"), request_timeout_s=2)
    assert sync.sync(source, tenant_id=TENANT).indexed == 2
    site.pages["/kettle.html"] = Served(html("Kettles", "Descale it."), delay_s=6)
    report = sync.sync(source, tenant_id=TENANT)
    assert reasons(report)[src(site, "/kettle.html")] == "timed out (kept)"
    assert (report.deleted, report.unchanged) == (0, 1), report
    assert visible(resources, "monthly", "staff") == [src(site, "/kettle.html")]


def test_a_compressed_bomb_stops_at_the_size_limit(
    resources: Resources, site: Site, tmp_path: Path
) -> None:
    site.pages["/bomb.html"] = Served(b"<p>" + b"0" * 20_000_000 + b"</p>", encoding="gzip")
    source = web(site, tmp_path, seeds=[site.url("/bomb.html")])
    report = make_sync(resources).sync(source, tenant_id=TENANT)
    assert reasons(report)[src(site, "/bomb.html")] == "larger than 50000 bytes (max_page_bytes)"


def test_a_connection_that_reaches_a_private_address_is_refused(
    resources: Resources, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name resolved to a public address when checked, and to loopback when connected
    # (DNS rebinding): the address the connection reached is checked too.
    monkeypatch.setattr(PageFetcher, "_address_problem", lambda self, url: "")
    report = make_sync(resources).sync(web(site, tmp_path, private_hosts=[]), tenant_id=TENANT)
    assert reasons(report)[src(site, "/")] == (
        "host '127.0.0.1' reached a private or loopback address (127.0.0.1)"
    )
    assert report.indexed == 0


def test_settings_tell_sources_apart_by_kind(tmp_path: Path) -> None:
    settings = Settings(
        sources=[
            {
                "name": "kb",
                "url": "sqlite://",
                "query": "SELECT 1",
                "id_column": "id",
                "text_columns": ["body"],
            },
            {"name": "site", "kind": "web", "seeds": ["https://docs.example.com/"]},
        ]
    )
    sql, site = settings.sources
    assert isinstance(sql, SqlSourceSettings) and isinstance(site, WebSourceSettings)
    connector = configured_source(site, data_dir=tmp_path)
    assert isinstance(connector, WebSource) and list(connector.hosts) == ["docs.example.com"]
    with pytest.raises(SettingsError, match="needs the data folder"):
        configured_source(site)
    with pytest.raises(ValidationError):
        Settings(sources=[{"name": "site", "kind": "web", "seeds": [], "url": "x"}])
    with pytest.raises(SettingsError, match="is not an http"):
        configured_source(
            WebSourceSettings(name="s", kind="web", seeds=["file:///etc/passwd"]), data_dir=tmp_path
        )


def test_a_name_that_does_not_resolve_keeps_the_pages(
    resources: Resources, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = make_sync(resources)
    source = web(site, tmp_path, private_hosts=[])
    monkeypatch.setattr(PageFetcher, "_private_ok", lambda self, url: True)
    assert sync.sync(source, tenant_id=TENANT).indexed == 4
    monkeypatch.undo()

    def unresolved(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unresolved)
    report = sync.sync(source, tenant_id=TENANT)
    assert report.deleted == 0
    assert reasons(report)[src(site, "/")] == "robots.txt: cannot resolve host '127.0.0.1' (kept)"
