"""An identity provider's signing keys (its JWKS), fetched over HTTP(S) and cached.

The set is fetched on first use, again once ``jwks_ttl_s`` has passed, and again when a
token names a key id the set lacks (the provider rotated its keys), but at most once every
``jwks_min_refresh_s``: tokens with made-up key ids cannot make the server hammer the
provider. One fetch runs at a time; concurrent requests wait for it. Symmetric keys
(``kty: oct``) in a set are ignored: a token is never checked against a shared secret.

Why not PyJWT's ``PyJWKClient``: it fetches with blocking ``urllib`` on the event loop,
refetches on every unknown kid without a minimum interval, and has no size cap.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from app.config.oidc import OidcSettings, https_url

__all__ = ["JwksCache", "JwksUnavailable"]

_MAX_DOCUMENT_BYTES = 256_000


class JwksUnavailable(Exception):
    """The key set (or the discovery document) could not be fetched or read."""


class JwksCache:
    """The provider's public keys by key id."""

    def __init__(self, settings: OidcSettings) -> None:
        """Fetch nothing yet: the first token does."""
        self.settings = settings
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._jwks_url = settings.jwks_url
        self._lock = asyncio.Lock()
        self._client = httpx.AsyncClient(timeout=settings.fetch_timeout_s, follow_redirects=False)
        self.fetches = 0
        """How many times the key set was fetched (for tests and logs)."""

    async def key(self, kid: str) -> dict[str, Any] | None:
        """Return the JWK with key id ``kid``, or None when the provider has none.

        Raises:
            JwksUnavailable: The key set had to be fetched and could not be.
        """
        if self._fresh() and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if self._fresh() and kid in self._keys:  # fetched while this request waited
                return self._keys[kid]
            if not self._fresh() or self._may_refetch():
                await self._refresh()
        return self._keys.get(kid)

    def _fresh(self) -> bool:
        fetched = self._fetched_at
        return fetched is not None and time.monotonic() - fetched < self.settings.jwks_ttl_s

    def _may_refetch(self) -> bool:
        fetched = self._fetched_at
        return fetched is None or time.monotonic() - fetched >= self.settings.jwks_min_refresh_s

    async def _refresh(self) -> None:
        if self._jwks_url is None:
            self._jwks_url = await self._discover()
        document = await self._get(self._jwks_url)
        found = document.get("keys")
        if not isinstance(found, list):
            raise JwksUnavailable("the key set has no 'keys' list")
        keys: dict[str, dict[str, Any]] = {}
        for jwk in found:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("kty") != "oct" and jwk.get("use", "sig") == "sig":
                keys[jwk["kid"]] = jwk
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1

    async def _discover(self) -> str:
        """Return the ``jwks_uri`` of the issuer's discovery document."""
        issuer = self.settings.issuer
        document = await self._get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise JwksUnavailable("the discovery document names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise JwksUnavailable("the discovery document has no jwks_uri")
        try:
            return https_url("jwks_uri", uri)
        except ValueError:
            raise JwksUnavailable("the discovery document's jwks_uri is not https") from None

    async def _get(self, url: str) -> dict[str, Any]:
        """GET a JSON object of at most 256 kB."""
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP {response.status_code} from the provider")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise JwksUnavailable("the provider's document is too large")
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"cannot reach the provider ({type(exc).__name__})") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable("the provider's document is not JSON") from None
        if not isinstance(document, dict):
            raise JwksUnavailable("the provider's document is not a JSON object")
        return document

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
