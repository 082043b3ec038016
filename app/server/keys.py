"""API keys: created once, stored hashed, mapped to a tenant, a user, ACL groups and scopes.

A key reads ``rgt_<key id>_<secret>``. The key id is public (it names the key in
``ragent keys list`` and finds its record); the secret is 32 random bytes. Only the
SHA-256 of the whole key is stored, compared in constant time.

Why SHA-256 and not a slow password hash (bcrypt, scrypt, Argon2): those make each
guess of a *low-entropy* password expensive. A key here carries 256 random bits, so
even a stolen table cannot be reversed by guessing, however fast the hash; a slow KDF
would only add tens of milliseconds to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from app.server.key_records import SCOPES, ApiKey, KeyStore
from app.server.key_stores import RedisKeyStore, SqliteKeyStore, open_key_store

__all__ = [
    "SCOPES",
    "ApiKey",
    "KeyStore",
    "RedisKeyStore",
    "SqliteKeyStore",
    "averify",
    "hash_key",
    "new_key",
    "open_key_store",
    "parse_key",
    "validate_identity",
]

PREFIX = "rgt"
_KEY = re.compile(r"^rgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


def validate_identity(kind: str, value: str) -> str:
    """Check a tenant or user id: letters, digits and ``_.@+-``, at most 128 characters.

    Ids never hold ``/`` or ``#``: thread keys join tenant and user with ``/`` and
    namespaces join tenant and name with ``#``, so neither can be forged.

    Raises:
        ValueError: The id is empty or holds other characters.
    """
    if not _IDENTITY.fullmatch(value):
        raise ValueError(
            f"invalid {kind} {value!r}: use letters, digits and _.@+- (at most 128, "
            "starting with a letter or digit)"
        )
    return value


def hash_key(key: str) -> str:
    """Return the hex SHA-256 of a whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """Return a fresh ``(key id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(key: str) -> str | None:
    """Return the key id of a well-formed key, else None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def verify(store: KeyStore, key: str) -> ApiKey | None:
    """Return the record of a valid, unrevoked key, else None (constant-time compare)."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    return _checked(store.find(key_id), key)


async def averify(store: KeyStore, key: str) -> ApiKey | None:
    """:func:`verify` on the event loop, through the store's :meth:`~KeyStore.afind`."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    return _checked(await store.afind(key_id), key)


def _checked(found: tuple[ApiKey, str] | None, key: str) -> ApiKey | None:
    if found is None:
        return None
    record, stored = found
    if not hmac.compare_digest(stored, hash_key(key)) or record.revoked_at is not None:
        return None
    return record


def create(
    store: KeyStore,
    *,
    tenant_id: str,
    user_id: str,
    groups: Sequence[str] = (),
    scopes: Sequence[str] = SCOPES,
    name: str = "",
) -> tuple[ApiKey, str]:
    """Create and store a key; returns its record and the key, shown only this once.

    Raises:
        ValueError: A bad tenant, user, group or scope.
    """
    validate_identity("tenant", tenant_id)
    validate_identity("user", user_id)
    for group in groups:
        validate_identity("group", group)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(unknown)})")
    key_id, key = new_key()
    record = ApiKey(
        key_id=key_id,
        tenant_id=tenant_id,
        user_id=user_id,
        groups=tuple(sorted(set(groups))),
        scopes=tuple(s for s in SCOPES if s in scopes),
        name=name,
    )
    store.add(record, hash_key(key))
    return record, key
