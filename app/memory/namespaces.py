"""Store namespaces scoped to a tenant and a user, with encoded labels.

Raw ids never become namespace labels. The Redis store matches labels as full text: the
last label as a word prefix, with stemming and without case ("run" would see "runner",
"Alice" would see "alice"). Each label is therefore a fixed-length decimal digest, so no
label is a prefix, a stem or a case variant of another, on any store.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final, Literal

__all__ = ["DIGEST_DIGITS", "Kind", "namespace", "tenant_label", "user_label"]

Kind = Literal["memories", "notes"]

DIGEST_DIGITS: Final = 39
"""Digits of a 128-bit digest: every label has the same length."""


def _digest(prefix: str, *parts: str) -> str:
    # JSON of the parts is unambiguous: ("a", "b/c") and ("a/b", "c") differ.
    data = json.dumps(list(parts), ensure_ascii=False).encode()
    number = int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")
    return f"{prefix}{number:0{DIGEST_DIGITS}d}"


def tenant_label(tenant_id: str) -> str:
    """Return the namespace label of a tenant: ``t`` and 39 digits."""
    return _digest("t", tenant_id)


def user_label(tenant_id: str, user_id: str) -> str:
    """Return the namespace label of a user of a tenant: ``u`` and 39 digits."""
    return _digest("u", tenant_id, user_id)


def namespace(kind: Kind, tenant_id: str, user_id: str) -> tuple[str, str, str]:
    """Return the namespace of a user's memories or notes.

    Args:
        kind: ``memories`` or ``notes``.
        tenant_id: The caller's tenant.
        user_id: The caller's user id.

    Returns:
        ``(kind, tenant label, user label)``; equal only for the same tenant and user.
    """
    return (kind, tenant_label(tenant_id), user_label(tenant_id, user_id))
