"""A real local OpenID Connect issuer for tests: discovery and JWKS over loopback HTTP.

:class:`Issuer` holds RSA signing keys (made with ``cryptography``), serves their public
halves at ``/jwks`` and the discovery document at ``/.well-known/openid-configuration``,
counts the key-set fetches, rotates keys on demand, and signs tokens, well-formed or
deliberately broken (``alg: none``, HS256 keyed with the public key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request

from tests.servers import asgi_server

AUDIENCE = "ragent-api"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issuer:
    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    fetches: int = 0

    def rotate(self, kid: str) -> None:
        """Replace every key with a new one named ``kid``."""
        self.keys = {kid: new_key()}

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "u-1",
            "preferred_username": "carol",
            "tenant": "acme",
            "groups": ["eng"],
            "scope": "openid chat ingest",
            "iat": now,
            "exp": now + 300,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def token(
        self,
        *,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        kid = kid or next(iter(self.keys))
        signer = key or self.keys.get(kid) or next(iter(self.keys.values()))
        return jwt.encode(self.claims(**claims), signer, algorithm="RS256", headers={"kid": kid})

    def unsigned(self, **claims: Any) -> str:
        """An ``alg: none`` token: no signature at all."""
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": self._kid()}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(**claims)).encode())}."

    def hs256_with_public_key(self, **claims: Any) -> str:
        """HS256, keyed with the RSA public key's PEM: the HS/RS confusion attack."""
        pem = (
            self.keys[self._kid()]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self._kid()}).encode())
        payload = _b64(json.dumps(self.claims(**claims)).encode())
        mac = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(mac)}"

    def _kid(self) -> str:
        return next(iter(self.keys))


def _app(issuer: Issuer) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        return {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        issuer.fetches += 1
        return issuer.jwks()

    return app


@contextmanager
def oidc_issuer() -> Iterator[Issuer]:
    """Serve a fresh issuer with one key (kid ``k1``) on a loopback port."""
    issuer = Issuer(keys={"k1": new_key()})
    with asgi_server(_app(issuer)) as url:
        issuer.url = url
        yield issuer


def oidc_settings(issuer: Issuer, **overrides: Any) -> dict[str, Any]:
    """``server.oidc`` for ``issuer``: tenant from ``tenant``, user from ``preferred_username``."""
    return {
        "issuer": issuer.url,
        "audience": AUDIENCE,
        "user_claim": "preferred_username",
        "jwks_min_refresh_s": 1,
        **overrides,
    }
