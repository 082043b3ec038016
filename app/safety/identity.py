"""Ids fit for logs, traces and audit records: personal data in an id becomes a pseudonym."""

from __future__ import annotations

import hashlib

from app.safety.pii import redact

__all__ = ["safe_identity"]


def safe_identity(value: str) -> str:
    """Return an id as is, or a stable pseudonym when it holds personal data (an e-mail)."""
    _, kinds = redact(value)
    if not kinds:
        return value
    return "pseudonym:" + hashlib.blake2b(value.encode(), digest_size=8).hexdigest()
