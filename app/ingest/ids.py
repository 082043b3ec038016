"""Stable content hashes and ids for documents and chunks."""

from __future__ import annotations

import hashlib

__all__ = ["content_hash", "stable_id"]


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_id(*parts: str) -> str:
    """Return a stable 32-hex-digit id derived from ``parts``."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
