"""``http_get``: fetch a web page from an allowlisted host, off unless configured."""

from __future__ import annotations

from typing import Annotated, Final

import httpx
from langchain_core.tools import tool
from pydantic import Field

from app.tools.context import Caller, ToolContext
from app.tools.risk import with_risk

__all__ = ["MAX_REDIRECTS", "fetch", "host_allowed", "http_get"]

MAX_REDIRECTS: Final = 3
_TEXT_TYPES: Final = ("text/", "application/json", "application/xml", "application/xhtml")


def host_allowed(url: httpx.URL, allowlist: list[str]) -> bool:
    """Return whether ``url``'s host (and port) is on the allowlist.

    An entry ``host`` allows any port of that host; ``host:port`` allows only that port.
    Hosts compare without case; nothing else (no wildcard, no subdomain) matches.
    """
    host = (url.host or "").lower().rstrip(".")
    port = url.port or (443 if url.scheme == "https" else 80)
    for entry in allowlist:
        name, _, entry_port = entry.lower().rstrip(".").partition(":")
        if name == host and (not entry_port or entry_port == str(port)):
            return True
    return False


def _readable(content_type: str, body: bytes, encoding: str) -> str:
    text = body.decode(encoding or "utf-8", errors="replace")
    if "html" in content_type:
        import lxml.etree  # type: ignore[import-untyped]  # lxml ships no type information
        import lxml.html  # type: ignore[import-untyped]

        try:
            root = lxml.html.fromstring(text)
        except (ValueError, lxml.etree.ParserError):
            return text
        for bad in root.xpath("//script|//style|//noscript"):
            bad.drop_tree()
        return " ".join(root.text_content().split())
    return text


async def fetch(url: str, caller: ToolContext, *, client: httpx.AsyncClient | None = None) -> str:
    """GET ``url`` if its host is allowlisted, following redirects only to allowlisted hosts.

    Returns:
        ``HTTP <status> <content type>`` and the readable text (HTML reduced to its text),
        at most ``tools.http_max_bytes`` bytes of body, with a note when cut.

    Raises:
        ValueError: The URL is not http(s), its host is not allowed, a redirect leaves the
            allowlist, or the server cannot be reached.
    """
    cfg = caller.settings
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=10.0)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if target.scheme not in ("http", "https") or not target.host:
                raise ValueError("only http:// and https:// URLs with a host can be fetched")
            if not host_allowed(target, cfg.http_allowlist):
                raise ValueError(
                    f"host {target.host!r} is not on the allowlist (tools.http_allowlist)"
                )
            async with http.stream("GET", target) as response:
                if response.is_redirect and "location" in response.headers:
                    target = target.join(response.headers["location"])
                    continue
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cfg.http_max_bytes:
                        break
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                cut = len(body) > cfg.http_max_bytes
                head = f"HTTP {response.status_code} {kind or 'unknown type'}"
                if kind and not kind.startswith(_TEXT_TYPES):
                    return f"{head}\n[binary content not shown]"
                text = _readable(kind, bytes(body[: cfg.http_max_bytes]), response.encoding or "")
                note = f"\n[cut at {cfg.http_max_bytes} bytes]" if cut else ""
                return f"{head}\n\n{text}{note}"
        raise ValueError(f"more than {MAX_REDIRECTS} redirects")
    except httpx.HTTPError as exc:
        raise ValueError(f"the request failed: {type(exc).__name__}") from None
    finally:
        if own:
            await http.aclose()


@tool(parse_docstring=True)
async def http_get(
    url: Annotated[str, Field(min_length=8, max_length=2000)], caller: Caller
) -> str:
    """Fetch a web page or API response by URL (only from hosts the operator allowed).

    Args:
        url: The full http:// or https:// URL.
        caller: Injected: who the call acts for (never shown to the model).
    """
    return await fetch(url, caller)


with_risk(http_get, "read")
