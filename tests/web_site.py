"""A small web site on loopback for the web source's tests and bench: real HTTP, ETags.

Pages can be changed, removed or made to fail while it runs; every request is recorded
with its conditional headers and the status it got.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """One page: its body, type, and the time it last changed."""

    body: bytes
    content_type: str = "text/html; charset=utf-8"
    modified: float = 1_767_225_600.0  # 2026-01-01
    status: int = 200
    location: str = ""
    delay_s: float = 0.0
    """Wait this long before answering (a slow server)."""
    encoding: str = ""
    """``gzip``: ``body`` is sent compressed, with Content-Encoding."""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass(frozen=True)
class Request:
    path: str
    if_none_match: str
    if_modified_since: str
    status: int


def html(title: str, text: str, *links: str) -> bytes:
    anchors = "".join(f'<li><a href="{link}">see also</a></li>' for link in links)
    return (
        f"<html><head><title>{title}</title></head><body>"
        f"<nav><a href='/'>home</a></nav><h1>{title}</h1><p>{text}</p><ul>{anchors}</ul>"
        "</body></html>"
    ).encode()


@dataclass
class Site:
    """The site's pages by path, and the requests it answered."""

    pages: dict[str, Served] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def seen(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def sitemap(self, *paths: str, lastmod: dict[str, str] | None = None) -> None:
        """Serve /sitemap.xml listing ``paths`` (with their ``<lastmod>`` when given)."""
        entries = "".join(
            f"<url><loc>{self.url(p)}</loc>"
            + (f"<lastmod>{lastmod[p]}</lastmod>" if lastmod and p in lastmod else "")
            + "</url>"
            for p in paths
        )
        self.pages["/sitemap.xml"] = Served(
            (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{entries}</urlset>"
            ).encode(),
            content_type="application/xml",
        )


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with site.lock:
                page = site.pages.get(self.path)
            if page is not None and page.delay_s:
                time.sleep(page.delay_s)
            status = self._answer(page)
            with site.lock:
                site.requests.append(
                    Request(
                        self.path,
                        self.headers.get("If-None-Match", ""),
                        self.headers.get("If-Modified-Since", ""),
                        status,
                    )
                )

        def _answer(self, page: Served | None) -> int:
            if page is None:
                self._send(404, b"not found", "text/plain")
                return 404
            if page.status in (301, 302):
                self.send_response(page.status)
                self.send_header("Location", page.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return page.status
            if page.status != 200:
                self._send(page.status, b"failing", "text/plain")
                return page.status
            modified = formatdate(page.modified, usegmt=True)
            if self.headers.get("If-None-Match") == page.etag:
                self.send_response(304)
                self.send_header("ETag", page.etag)
                self.end_headers()
                return 304
            body = gzip.compress(page.body) if page.encoding == "gzip" else page.body
            self._send(200, body, page.content_type, page.etag, modified, page.encoding)
            return 200

        def _send(
            self,
            status: int,
            body: bytes,
            kind: str,
            etag: str = "",
            modified: str = "",
            encoding: str = "",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that stops reading a page past its size limit resets the connection


@contextmanager
def serve(site: Site) -> Iterator[Site]:
    """Serve ``site`` on a free loopback port until the block ends."""
    server = _Server(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def small_site() -> Site:
    """Pages with links, a robots.txt that disallows /private/, a large page, a redirect away."""
    site = Site()
    site.pages.update(
        {
            "/robots.txt": Served(
                b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"
            ),
            "/": Served(
                html(
                    "Home",
                    "Welcome to the handbook.",
                    "/kettle.html",
                    "/bikes.html",
                    "/plants.html",
                    "/private/salaries.html",
                    "/big.html",
                    "/away",
                    "mailto:someone@example.com",
                )
            ),
            "/kettle.html": Served(html("Kettles", "Descale the kettle monthly.", "/")),
            "/bikes.html": Served(html("Bikes", "Oil the bicycle chain.", "/plants.html")),
            "/plants.html": Served(html("Plants", "Water the ficus weekly.", "/")),
            "/private/salaries.html": Served(html("Salaries", "Payroll bands are secret.")),
            "/big.html": Served(html("Big", "enormous " * 20_000)),
        }
    )
    return site
