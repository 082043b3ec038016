"""Who is calling: an API key or an OIDC JWT in ``Authorization: Bearer``, as a :class:`Principal`.

The identity of every request (tenant, user, ACL groups) comes from here and nowhere
else: never from a request body.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.server.api_keys import SCOPES, KeyStore, averify
from app.server.errors import ApiError
from app.server.oidc import TokenVerifier, looks_like_jwt

__all__ = ["ANONYMOUS_USER", "Authenticator", "Principal"]

ANONYMOUS_USER = "anonymous"
"""The user of every request when auth is off (``ragent serve --no-auth``)."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ragent"'}


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The caller, as its API key (or its identity provider's token) says."""

    key_id: str
    tenant_id: str
    user_id: str
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = SCOPES
    end_user: str | None = None
    """The end user the request acts for (``user_id`` is then ``<key user>/<end user>``);
    see :mod:`app.server.end_users`."""

    def require(self, scope: str) -> None:
        """Refuse with 403 unless the key holds ``scope``.

        Raises:
            ApiError: 403 ``insufficient_scope``.
        """
        if scope not in self.scopes:
            raise ApiError(403, f"this API key lacks the {scope!r} scope", "insufficient_scope")


class Authenticator:
    """Turns an ``Authorization`` header into a principal, or a 401."""

    def __init__(
        self, store: KeyStore | None, *, tenant_id: str, tokens: TokenVerifier | None = None
    ) -> None:
        """``store`` None means auth is off: everyone is the anonymous user of ``tenant_id``.

        With auth off every scope is granted, ``end_users`` included: a front end on a
        development server can still keep its users apart. ``tokens`` also accepts an
        identity provider's JWTs (``server.oidc``).
        """
        self.store = store
        self.tokens = tokens
        self.anonymous = Principal(
            key_id=ANONYMOUS_USER, tenant_id=tenant_id, user_id=ANONYMOUS_USER
        )

    async def principal(self, authorization: str | None) -> Principal:
        """Return the caller.

        Raises:
            ApiError: 401 when the key or token is missing, malformed, unknown, revoked
                or invalid; 503 when the identity provider's keys cannot be fetched.
        """
        if self.store is None:
            return self.anonymous
        if not authorization:
            raise ApiError(
                401,
                "missing API key: send 'Authorization: Bearer <key>'",
                "missing_api_key",
                headers=_CHALLENGE,
            )
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "malformed Authorization header: use 'Bearer <key>'",
                "invalid_api_key",
                headers=_CHALLENGE,
            )
        key = key.strip()
        if self.tokens is not None and looks_like_jwt(key):
            token = await self.tokens.verify(key)
            return Principal(
                key_id=f"oidc:{token.tenant_id}/{token.user_id}",
                tenant_id=token.tenant_id,
                user_id=token.user_id,
                groups=token.groups,
                scopes=token.scopes,
            )
        record = await averify(self.store, key)
        if record is None:
            raise ApiError(401, "invalid or revoked API key", "invalid_api_key", headers=_CHALLENGE)
        return Principal(
            key_id=record.key_id,
            tenant_id=record.tenant_id,
            user_id=record.user_id,
            groups=record.groups,
            scopes=record.scopes,
        )
