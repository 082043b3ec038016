"""Reading what the web source fetched: sitemaps, and pages to text, title and links.

Pages go through the ingest loaders (:mod:`app.ingest.loaders.markup`), with their nesting
limit; sitemaps through lxml with entities, DTDs and the network off.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.ingest.loaders.markup import MAX_DEPTH, load_html, load_markdown, load_plain_text

__all__ = ["Page", "Sitemap", "SitemapError", "canonical", "read_page", "read_sitemap"]


class SitemapError(ValueError):
    """A sitemap that is not one."""


@dataclass(frozen=True, slots=True)
class Sitemap:
    """One sitemap file: the pages it lists, or the sitemaps (an index) it names."""

    pages: list[tuple[str, str]]
    """``(url, lastmod)`` pairs; lastmod is "" where the sitemap gives none."""
    sitemaps: list[str]


@dataclass(frozen=True, slots=True)
class Page:
    """A page as the index will hold it."""

    text: str
    title: str
    links: list[str]


def canonical(url: str, base: str | None = None) -> str | None:
    """``url`` (joined to ``base``) without its fragment, or None if it is not http(s)."""
    try:
        joined = httpx.URL(base).join(url) if base else httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None
    if joined.scheme not in ("http", "https") or not joined.host:
        return None
    return str(joined.copy_with(fragment=None))


def read_sitemap(body: bytes) -> Sitemap:
    """Parse a sitemap or sitemap index (https://www.sitemaps.org/protocol.html).

    Raises:
        SitemapError: Not XML, or neither a ``urlset`` nor a ``sitemapindex``.
    """
    import lxml.etree  # type: ignore[import-untyped]  # lxml ships no type information

    parser = lxml.etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = lxml.etree.fromstring(body, parser=parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise SitemapError(f"not XML: {exc}") from None
    kind = lxml.etree.QName(root).localname
    if kind == "sitemapindex":
        locs = root.xpath("./*[local-name()='sitemap']/*[local-name()='loc']/text()")
        return Sitemap(pages=[], sitemaps=[str(loc).strip() for loc in locs])
    if kind != "urlset":
        raise SitemapError(f"the root element is <{kind}>, not <urlset> or <sitemapindex>")
    pages: list[tuple[str, str]] = []
    for entry in root.xpath("./*[local-name()='url']"):
        loc = entry.xpath("./*[local-name()='loc']/text()")
        lastmod = entry.xpath("./*[local-name()='lastmod']/text()")
        if loc:
            pages.append((str(loc[0]).strip(), str(lastmod[0]).strip() if lastmod else ""))
    return Sitemap(pages=pages, sitemaps=[])


def _html_title_and_links(body: bytes, url: str) -> tuple[str, list[str]]:
    import lxml.etree
    import lxml.html  # type: ignore[import-untyped]

    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True)
    try:
        root = lxml.html.document_fromstring(body, parser=parser)
    except (ValueError, lxml.etree.ParserError):
        return "", []
    title = " ".join(" ".join(str(t) for t in root.xpath("//title//text()")).split())
    links: list[str] = []
    for href in root.xpath("//a[not(contains(@rel, 'nofollow'))]/@href"):
        link = canonical(str(href), url)
        if link is not None and link not in links:
            links.append(link)
    return title, links


def read_page(body: bytes, content_type: str, url: str, *, max_depth: int = MAX_DEPTH) -> Page:
    """Turn a fetched page into text, its title and its links.

    Raises:
        LoadError: The loader refused it (binary, undecodable, nested too deep).
    """
    if content_type in ("text/html", "application/xhtml+xml"):
        elements = load_html(body, max_depth=max_depth)  # refuses deep nesting first
        title, links = _html_title_and_links(body, url)
    elif content_type == "text/markdown":
        elements, title, links = load_markdown(body), "", []
    else:
        elements, title, links = load_plain_text(body), "", []
    text = "\n\n".join(e.text for e in elements if e.text.strip())
    return Page(text=text, title=title, links=links)
