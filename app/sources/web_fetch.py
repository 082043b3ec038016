"""One guarded GET for the web source: the ``http_get`` tool's host allowlist, and more.

Every hop (the first request and each redirect) must be on the source's host allowlist
(:func:`app.tools.http.host_allowed`, the tool's own rule) and its host must resolve to
public addresses only, unless the host is listed as private on purpose; the address the
connection really reached is checked again (a name that resolves differently the second
time gets nothing). The body is streamed and dropped past a byte limit, and only the
content types the ingest loaders read are kept.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Final, Literal

import httpx

from app.tools.http import MAX_REDIRECTS, host_allowed

__all__ = ["Fetched", "PageFetcher", "TEXT_TYPES"]

TEXT_TYPES: Final = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
_XML_TYPES: Final = ("application/xml", "text/xml")

Outcome = Literal["ok", "not_modified", "gone", "transient", "refused"]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one GET gave (after redirects)."""

    outcome: Outcome
    """``ok`` 200 with a body; ``not_modified`` 304; ``gone`` 404/410; ``transient`` a
    5xx, 429, timeout or lost connection (try again next sync); ``refused`` the request or
    its answer broke a rule (host, address, size, type)."""
    reason: str = ""
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""


class _Unresolved(Exception):
    """A host name the resolver could not answer for now."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


@dataclass(kw_only=True)
class PageFetcher:
    """GETs pages for one crawl; one connection pool, closed by :meth:`close`."""

    hosts: list[str]
    """``host`` or ``host:port`` entries a request may go to."""
    private_hosts: list[str]
    """Hosts (on ``hosts`` too) allowed to resolve to loopback or private addresses."""
    user_agent: str
    max_bytes: int
    timeout_s: float
    _client: httpx.Client = field(init=False)
    _checked: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Open the connection pool (no proxy from the environment, no automatic redirects)."""
        self._client = httpx.Client(
            follow_redirects=False,
            trust_env=False,
            timeout=self.timeout_s,
            headers={"User-Agent": self.user_agent},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _private_ok(self, url: httpx.URL) -> bool:
        return host_allowed(url, self.private_hosts)

    def _address_problem(self, url: httpx.URL) -> str:
        """Why ``url``'s host may not be reached ("" when it may); cached per host.

        Raises:
            _Unresolved: The name does not resolve now (a transient failure).
        """
        host = url.host or ""
        if host not in self._checked:
            if self._private_ok(url):
                self._checked[host] = ""
            else:
                try:
                    infos = socket.getaddrinfo(host, url.port or 80, type=socket.SOCK_STREAM)
                except (OSError, UnicodeError):  # not cached: DNS may answer next time
                    raise _Unresolved(f"cannot resolve host {host!r}") from None
                bad = sorted({str(i[4][0]) for i in infos if not _public(str(i[4][0]))})
                self._checked[host] = (
                    f"host {host!r} resolves to a private or loopback address ({bad[0]});"
                    " list it in private_hosts to allow it"
                    if bad
                    else ""
                )
        return self._checked[host]

    def _reached_problem(self, url: httpx.URL, response: httpx.Response) -> str:
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if not peer or self._private_ok(url) or _public(str(peer[0])):
            return ""
        return f"host {url.host!r} reached a private or loopback address ({peer[0]})"

    def get(
        self, url: str, *, etag: str = "", last_modified: str = "", xml: bool = False
    ) -> Fetched:
        """GET ``url`` under the rules above, conditionally when validators are given.

        Args:
            url: An http(s) URL.
            etag: Sent as If-None-Match.
            last_modified: Sent as If-Modified-Since.
            xml: Accept XML (a sitemap) rather than pages.
        """
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            return Fetched("refused", f"invalid URL: {exc}")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _ in range(MAX_REDIRECTS + 1):
            if target.scheme not in ("http", "https") or not target.host:
                return Fetched("refused", f"not an http(s) URL: {target}")
            if not host_allowed(target, self.hosts):
                return Fetched("refused", f"host {target.host!r} is not on the source's hosts")
            try:
                problem = self._address_problem(target)
            except _Unresolved as exc:
                return Fetched("transient", str(exc))
            if problem:
                return Fetched("refused", problem)
            try:
                with self._client.stream("GET", target, headers=headers) as response:
                    problem = self._reached_problem(target, response)
                    if problem:
                        return Fetched("refused", problem)
                    if response.is_redirect and "location" in response.headers:
                        target = target.join(response.headers["location"])
                        continue
                    return self._read(response, xml=xml)
            except httpx.TimeoutException:
                return Fetched("transient", "timed out")
            except httpx.HTTPError as exc:
                return Fetched("transient", f"request failed: {type(exc).__name__}")
        return Fetched("refused", f"more than {MAX_REDIRECTS} redirects")

    def _read(self, response: httpx.Response, *, xml: bool) -> Fetched:
        status = response.status_code
        if status == 304:
            return Fetched("not_modified")
        if status in (404, 410):
            return Fetched("gone", f"HTTP {status}")
        if status == 429 or status >= 500:
            return Fetched("transient", f"HTTP {status}")
        if status != 200:
            return Fetched("refused", f"HTTP {status}")
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        allowed = (*_XML_TYPES, "text/plain") if xml else TEXT_TYPES
        if kind not in allowed:
            return Fetched("refused", f"content type {kind or 'none'!r} is not read")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return Fetched("refused", f"larger than {self.max_bytes} bytes (max_page_bytes)")
        body = bytearray()
        for chunk in response.iter_bytes():  # decoded: a compressed bomb stops here too
            body += chunk
            if len(body) > self.max_bytes:
                return Fetched("refused", f"larger than {self.max_bytes} bytes (max_page_bytes)")
        return Fetched(
            "ok",
            body=bytes(body),
            content_type=kind,
            etag=response.headers.get("etag", ""),
            last_modified=response.headers.get("last-modified", ""),
        )
