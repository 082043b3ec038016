"""The ``server.oidc`` section: JWTs of an OpenID Connect identity provider, besides API keys."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from app.config.section import Section

__all__ = ["ASYMMETRIC_ALGORITHMS", "OidcSettings", "https_url"]

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Algorithms a token may be signed with: public-key ones only. A shared-secret algorithm
(HS256) would let anyone holding the provider's *public* key sign tokens."""

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def https_url(name: str, url: str) -> str:
    """Return ``url`` if it is https (or http on loopback).

    Raises:
        ValueError: Any other URL.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return url
    raise ValueError(f"{name}: {url!r} must be an https:// URL (http:// only on loopback)")


class OidcSettings(Section):
    """Who may sign the bearer tokens the API accepts, and which claims say who calls.

    Set as ``RAGENT_SERVER_OIDC='{"issuer": "...", "audience": "..."}'`` or under
    ``server.oidc`` in the settings file. A token's tenant, user and groups come from its
    verified claims only; its scopes are ragent's key scopes (``chat``, ``ingest``,
    ``end_users``, ``admin``), mapped from the provider's through ``scope_map``.
    """

    issuer: str
    """The ``iss`` every token must carry, exactly; also where discovery is read
    (``<issuer>/.well-known/openid-configuration``) unless ``jwks_url`` is set."""
    audience: list[str] = Field(min_length=1, max_length=16)
    """Accepted ``aud`` values: a token must name at least one."""
    jwks_url: str | None = None
    """The provider's key set; None: the ``jwks_uri`` its discovery document names."""
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    """Accepted ``alg`` values, public-key algorithms only (``none`` and ``HS*`` refused)."""
    leeway_s: float = Field(default=30.0, ge=0, le=600)
    """Clock skew allowed on ``exp``, ``nbf`` and ``iat``."""
    tenant_claim: str | None = "tenant"
    """The claim naming the tenant; None: every token's tenant is the settings' ``tenant_id``."""
    user_claim: str = "sub"
    """The claim naming the user."""
    groups_claim: str | None = "groups"
    """The claim listing the ACL groups (a list of strings); None: no groups."""
    scopes_claim: str = "scope"
    """The claim holding the provider's scopes: a space-separated string or a list."""
    scope_map: dict[str, str] = Field(
        default_factory=lambda: {"chat": "chat", "ingest": "ingest", "end_users": "end_users"},
        max_length=64,
    )
    """Provider scope -> ragent scope; a provider scope not listed grants nothing."""
    jwks_ttl_s: float = Field(default=3600.0, ge=1)
    """How long a fetched key set is used before it is fetched again."""
    jwks_min_refresh_s: float = Field(default=30.0, ge=0)
    """A token naming an unknown ``kid`` fetches the key set again (the provider rotated
    its keys), at most once this often: a flood of made-up kids cannot hammer the provider."""
    fetch_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Time allowed to fetch the discovery document or the key set."""

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        return https_url("issuer", value)

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else https_url("jwks_url", value)

    @field_validator("audience", mode="before")
    @classmethod
    def _one_audience(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _asymmetric(self) -> OidcSettings:
        refused = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(
                f"algorithms: {', '.join(refused)} not allowed; use public-key algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
            )
        unknown = sorted(set(self.scope_map.values()) - {"chat", "ingest", "end_users", "admin"})
        if unknown:
            raise ValueError(
                f"scope_map: {', '.join(unknown)} are not ragent scopes "
                "(chat, ingest, end_users, admin)"
            )
        return self
