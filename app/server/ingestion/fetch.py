"""Fetch a document for ingestion from an allowlisted host (``server.ingest_url_allowlist``).

Every redirect is checked against the allowlist again, the body is cut off (and the
file refused) past ``ingest.max_file_bytes``, and the file type comes from the URL's
suffix or the response's content type.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit

import httpx

from app.ingest.loaders import SUPPORTED_SUFFIXES
from app.server.ingestion.uploads import Author, Upload, keep, safe_name
from app.settings import Settings

__all__ = ["allowed", "fetch_url"]

_MAX_REDIRECTS = 5
_TIMEOUT_S = 30.0
_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/json": ".jsonl",
    "text/csv": ".csv",
}


def allowed(url: str, allowlist: list[str]) -> bool:
    """Whether ``url`` is http(s) on a listed ``host`` or ``host:port``."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    host = parts.hostname.lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host in allowlist or f"{host}:{port}" in allowlist


def _suffix(url: str, content_type: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return suffix
    kind = content_type.split(";")[0].strip().lower()
    return _TYPES.get(kind) or mimetypes.guess_extension(kind) or ".txt"


async def fetch_url(settings: Settings, tenant: str, url: str, *, author: Author) -> Upload | str:
    """Download ``url`` into the uploads folder of ``author``.

    Returns:
        The kept file, indexed under the URL, or a one-line reason why it was not fetched.
    """
    allowlist = [h.lower() for h in settings.server.ingest_url_allowlist]
    cap = settings.ingest.max_file_bytes
    target = url
    async with httpx.AsyncClient(timeout=_TIMEOUT_S, follow_redirects=False) as client:
        for _ in range(_MAX_REDIRECTS + 1):
            if not allowed(target, allowlist):
                return f"host not in server.ingest_url_allowlist: {urlsplit(target).netloc}"
            try:
                async with client.stream("GET", target) as response:
                    if response.is_redirect and "location" in response.headers:
                        target = urljoin(target, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        return f"HTTP {response.status_code}"
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > cap:
                            return f"larger than ingest.max_file_bytes ({cap} bytes)"
                    suffix = _suffix(target, response.headers.get("content-type", ""))
            except httpx.HTTPError as exc:
                return f"cannot fetch: {type(exc).__name__}"
            stem = safe_name(PurePosixPath(urlsplit(url).path).stem or "document")
            return await asyncio.to_thread(
                keep, settings, tenant, url, stem + suffix, bytes(body), author=author
            )
    return f"more than {_MAX_REDIRECTS} redirects"
