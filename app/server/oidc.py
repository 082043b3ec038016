"""Bearer JWTs of an OpenID Connect provider, verified and turned into an identity.

A token is accepted only when its header's ``alg`` is one of ``server.oidc.algorithms``
(public-key algorithms: ``none`` and ``HS*`` never), its ``kid`` names a key of the
provider's key set whose type fits that algorithm, its signature verifies with that key,
and its ``iss``, ``aud``, ``exp`` (and ``nbf``, ``iat`` when present) hold within
``leeway_s``. Tenant, user and groups come from the verified claims only. Every failure
is a 401 ``invalid_token`` whose message says which check failed (never the token).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import jwt

from app.config.oidc import OidcSettings
from app.server.api_keys import SCOPES, validate_identity
from app.server.errors import ApiError
from app.server.jwks import JwksCache, JwksUnavailable

__all__ = ["TokenIdentity", "TokenVerifier", "looks_like_jwt"]

log = logging.getLogger("ragent.server")

MAX_TOKEN_BYTES = 16_384
"""Longer bearer tokens are refused before any parsing."""
MAX_GROUPS = 256

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ragent", error="invalid_token"'}
_REFUSALS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is not for this audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm does not fit its key"),
]


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has a JWT's three dot-separated parts."""
    return token.count(".") == 2 and not token.startswith("rgt_")


@dataclass(frozen=True, kw_only=True)
class TokenIdentity:
    """Who a verified token says calls."""

    subject: str
    tenant_id: str
    user_id: str
    groups: tuple[str, ...]
    scopes: tuple[str, ...]


def invalid_token(message: str) -> ApiError:
    """A 401 ``invalid_token`` with the bearer challenge RFC 6750 asks for."""
    return ApiError(401, message, "invalid_token", headers=_CHALLENGE)


class TokenVerifier:
    """Checks tokens against one provider's keys and maps their claims."""

    def __init__(self, settings: OidcSettings, *, tenant_id: str) -> None:
        """``tenant_id``: every token's tenant when ``tenant_claim`` is None."""
        self.settings = settings
        self.tenant_id = tenant_id
        self.keys = JwksCache(settings)

    async def verify(self, token: str) -> TokenIdentity:
        """Return the identity a valid token carries.

        Raises:
            ApiError: 401 ``invalid_token`` for any invalid token; 503 ``idp_unavailable``
                when the provider's keys cannot be fetched.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid_token("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token("the token is not a well-formed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise invalid_token(f"the token's algorithm {str(alg)[:16]!r} is not accepted")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise invalid_token("the token names no key (kid)")
        claims = self._decode(token, alg, await self._key(kid, alg))
        return self._identity(claims)

    async def _key(self, kid: str, alg: str) -> jwt.PyJWK:
        try:
            found = await self.keys.key(kid)
        except JwksUnavailable as exc:
            log.warning("identity provider keys unavailable: %s", exc)
            raise ApiError(
                503,
                "the identity provider's keys cannot be fetched; retry later",
                "idp_unavailable",
            ) from None
        if found is None:
            raise invalid_token("the token's key (kid) is not one of the provider's")
        if found.get("alg", alg) != alg:
            raise invalid_token("the token's algorithm does not fit its key")
        try:
            return jwt.PyJWK(found, algorithm=alg)
        except jwt.PyJWTError:
            raise invalid_token("the token's algorithm does not fit its key") from None

    def _decode(self, token: str, alg: str, key: jwt.PyJWK) -> dict[str, Any]:
        settings = self.settings
        required = ["exp", "iss", "aud", settings.user_claim]
        if settings.tenant_claim is not None:
            required.append(settings.tenant_claim)
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": required},
            )
        except jwt.PyJWTError as exc:
            for kind, message in _REFUSALS:
                if isinstance(exc, kind):
                    raise invalid_token(message) from None
            raise invalid_token("the token is invalid") from None

    def _identity(self, claims: dict[str, Any]) -> TokenIdentity:
        settings = self.settings
        tenant = self.tenant_id
        if settings.tenant_claim is not None:
            tenant = _name(claims, settings.tenant_claim, "tenant")
        groups = claims.get(settings.groups_claim) if settings.groups_claim else None
        if groups is None:
            groups = []
        if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
            raise invalid_token(f"the token's {settings.groups_claim!r} claim is not a list")
        for group in groups:
            if not isinstance(group, str):
                raise invalid_token(f"the token's {settings.groups_claim!r} claim is not a list")
            _valid(group, "group", settings.groups_claim or "groups")
        return TokenIdentity(
            subject=str(claims.get("sub", "")),
            tenant_id=tenant,
            user_id=_name(claims, settings.user_claim, "user"),
            groups=tuple(sorted(set(groups))),
            scopes=self._scopes(claims.get(settings.scopes_claim)),
        )

    def _scopes(self, given: Any) -> tuple[str, ...]:
        names = given.split() if isinstance(given, str) else given
        if not isinstance(names, list):
            return ()
        granted = {self.settings.scope_map[n] for n in names if n in self.settings.scope_map}
        return tuple(s for s in SCOPES if s in granted)

    async def aclose(self) -> None:
        """Close the key set's HTTP client."""
        await self.keys.aclose()


def _name(claims: dict[str, Any], claim: str, kind: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str):
        raise invalid_token(f"the token's {claim!r} claim is not a string")
    return _valid(value, kind, claim)


def _valid(value: str, kind: str, claim: str) -> str:
    try:
        return validate_identity(kind, value)
    except ValueError:
        raise invalid_token(
            f"the token's {claim!r} claim is not a valid {kind} id (letters, digits, _.@+-)"
        ) from None
