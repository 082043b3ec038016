"""Identity provider tokens (app/server/oidc.py, jwks.py) against a real loopback issuer."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from app.config.oidc import OidcSettings
from app.server.errors import ApiError
from app.server.oidc import TokenVerifier
from tests.oidc_issuer import Issuer, new_key, oidc_issuer, oidc_settings


@pytest.fixture(scope="module")
def issuer_server() -> Iterator[Issuer]:
    with oidc_issuer() as issuer:
        yield issuer


@pytest.fixture
def issuer(issuer_server: Issuer) -> Iterator[Issuer]:
    yield issuer_server


@pytest.fixture
async def verifier(issuer: Issuer) -> AsyncIterator[TokenVerifier]:
    verifier = TokenVerifier(OidcSettings(**oidc_settings(issuer)), tenant_id="default")
    yield verifier
    await verifier.aclose()


async def test_a_valid_token_maps_its_claims_to_the_identity(
    issuer: Issuer, verifier: TokenVerifier
) -> None:
    identity = await verifier.verify(issuer.token(groups=["ops", "eng"]))
    assert (identity.tenant_id, identity.user_id) == ("acme", "carol")
    assert identity.groups == ("eng", "ops")
    assert identity.scopes == ("chat", "ingest")  # "openid" maps to nothing


async def test_clock_skew_within_the_leeway_is_accepted(
    issuer: Issuer, verifier: TokenVerifier
) -> None:
    now = int(time.time())
    identity = await verifier.verify(issuer.token(exp=now - 10, nbf=now + 10))
    assert identity.user_id == "carol"


def _cases(issuer: Issuer) -> dict[str, tuple[str, str]]:
    now = int(time.time())
    return {
        "expired": (issuer.token(exp=now - 120), "expired"),
        "not yet valid": (issuer.token(nbf=now + 120), "not valid yet"),
        "wrong audience": (issuer.token(aud="someone-else"), "audience"),
        "wrong issuer": (issuer.token(iss="https://evil.example"), "issuer"),
        "unknown kid": (issuer.token(kid="nobody"), "kid"),
        "alg none": (issuer.unsigned(), "algorithm 'none'"),
        "HS256 keyed with the public key": (issuer.hs256_with_public_key(), "'HS256'"),
        "bad signature": (issuer.token(key=new_key()), "signature"),
        "no exp": (issuer.token(exp=None), "required claim"),
        "no tenant": (issuer.token(tenant=None), "required claim"),
        "bad user id": (issuer.token(preferred_username="a/b"), "not a valid user"),
        "groups not a list": (issuer.token(groups="eng"), "not a list"),
        "not a JWT": ("a.b.c", "well-formed"),
    }


CASES = [
    "expired",
    "not yet valid",
    "wrong audience",
    "wrong issuer",
    "unknown kid",
    "alg none",
    "HS256 keyed with the public key",
    "bad signature",
    "no exp",
    "no tenant",
    "bad user id",
    "groups not a list",
    "not a JWT",
]


@pytest.mark.parametrize("case", CASES)
async def test_each_invalid_token_is_a_401_invalid_token(
    issuer: Issuer, verifier: TokenVerifier, case: str
) -> None:
    token, reason = _cases(issuer)[case]
    with pytest.raises(ApiError) as refused:
        await verifier.verify(token)
    assert refused.value.status == 401
    assert refused.value.code == "invalid_token"
    assert reason in str(refused.value)
    assert 'error="invalid_token"' in (refused.value.headers or {})["WWW-Authenticate"]


async def test_a_rotated_key_is_fetched_and_the_old_one_dropped(issuer: Issuer) -> None:
    verifier = TokenVerifier(
        OidcSettings(**oidc_settings(issuer, jwks_min_refresh_s=0)), tenant_id="default"
    )
    try:
        old = issuer.token()
        await verifier.verify(old)
        issuer.rotate(f"k-{uuid.uuid4().hex[:6]}")
        assert (await verifier.verify(issuer.token())).user_id == "carol"
        with pytest.raises(ApiError, match="kid"):
            await verifier.verify(old)
    finally:
        await verifier.aclose()
        issuer.keys = {"k1": new_key()}


async def test_unknown_kids_refetch_the_key_set_at_most_once_per_interval(
    issuer: Issuer,
) -> None:
    verifier = TokenVerifier(
        OidcSettings(**oidc_settings(issuer, jwks_min_refresh_s=60)), tenant_id="default"
    )
    try:
        await verifier.verify(issuer.token())
        before = issuer.fetches
        for _ in range(20):
            with pytest.raises(ApiError):
                await verifier.verify(issuer.token(kid=uuid.uuid4().hex))
        assert issuer.fetches == before  # fetched <60 s ago: no refetch for made-up kids
    finally:
        await verifier.aclose()


async def test_an_unreachable_provider_is_a_503() -> None:
    settings = OidcSettings(issuer="http://127.0.0.1:9", audience="x", fetch_timeout_s=1)
    verifier = TokenVerifier(settings, tenant_id="default")
    issuer = Issuer(url="http://127.0.0.1:9", keys={"k1": new_key()})
    try:
        with pytest.raises(ApiError) as refused:
            await verifier.verify(issuer.token(aud="x"))
        assert (refused.value.status, refused.value.code) == (503, "idp_unavailable")
    finally:
        await verifier.aclose()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithms": ["HS256"]}, "HS256 not allowed"),
        ({"algorithms": ["none"]}, "none not allowed"),
        ({"issuer": "http://idp.example"}, "https"),
        ({"scope_map": {"admin": "root"}}, "not ragent scopes"),
    ],
)
def test_settings_refuse_symmetric_algorithms_plain_http_and_unknown_scopes(
    overrides: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {"issuer": "https://idp.example", "audience": "a"}
    with pytest.raises(ValidationError, match=message):
        OidcSettings(**{**base, **overrides})
