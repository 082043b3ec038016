"""API keys: hashed at rest, verified in constant time, revocable, identities validated."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.server import api_keys
from app.server.auth import Authenticator
from app.server.errors import ApiError


@pytest.fixture
def store(tmp_path: Path) -> api_keys.SqliteKeyStore:
    return api_keys.SqliteKeyStore(tmp_path / "server.sqlite")


def test_a_key_maps_to_its_identity_and_only_its_hash_is_stored(
    store: api_keys.SqliteKeyStore, tmp_path: Path
) -> None:
    record, key = api_keys.create(
        store, tenant_id="acme", user_id="ann@acme.example", groups=["ops", "eng", "ops"]
    )
    assert key.startswith(f"rgt_{record.key_id}_") and len(key) == 60
    assert api_keys.verify(store, key) == record
    assert record.groups == ("eng", "ops") and record.scopes == ("chat", "ingest")
    found = store.find(record.key_id)
    assert found is not None and found[1] == hashlib.sha256(key.encode()).hexdigest()
    store.close()
    assert key.encode() not in (tmp_path / "server.sqlite").read_bytes()


def test_wrong_malformed_and_revoked_keys_do_not_verify(store: api_keys.SqliteKeyStore) -> None:
    record, key = api_keys.create(store, tenant_id="acme", user_id="ann")
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert api_keys.verify(store, tampered) is None
    assert api_keys.verify(store, "rgt_short") is None
    assert api_keys.verify(store, f"rgt_{'0' * 12}_{'A' * 43}") is None
    assert store.revoke(record.key_id) and store.revoke(record.key_id)  # idempotent
    assert api_keys.verify(store, key) is None
    assert not store.revoke("ffffffffffff")
    [listed] = store.list()
    assert listed.revoked_at is not None


@pytest.mark.parametrize("tenant", ["", "a/b", "a#b", " a", "x" * 129, "é"])
def test_identities_that_could_forge_a_thread_key_are_refused(
    store: api_keys.SqliteKeyStore, tenant: str
) -> None:
    with pytest.raises(ValueError, match="invalid tenant"):
        api_keys.create(store, tenant_id=tenant, user_id="ann")


def test_unknown_scopes_are_refused(store: api_keys.SqliteKeyStore) -> None:
    with pytest.raises(ValueError, match="scopes"):
        api_keys.create(store, tenant_id="t", user_id="u", scopes=["root"])


async def test_authenticator(store: api_keys.SqliteKeyStore) -> None:
    record, key = api_keys.create(store, tenant_id="t", user_id="u", scopes=["chat"])
    auth = Authenticator(store, tenant_id="default")
    principal = await auth.principal(f"Bearer {key}")
    assert (principal.tenant_id, principal.user_id, principal.key_id) == ("t", "u", record.key_id)
    principal.require("chat")
    with pytest.raises(ApiError) as denied:
        principal.require("ingest")
    assert denied.value.status == 403
    for header in (None, "", "Basic x", f"Bearer {key}x"):
        with pytest.raises(ApiError) as refused:
            await auth.principal(header)
        assert refused.value.status == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    anonymous = await Authenticator(None, tenant_id="default").principal(None)
    assert (anonymous.tenant_id, anonymous.user_id) == ("default", "anonymous")
