"""Stable content hashes and ids for documents and chunks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["chunk_key", "content_hash", "stable_id", "with_acl"]


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_id(*parts: str) -> str:
    """Return a stable 32-hex-digit id derived from ``parts``."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def with_acl(digest: str, acl: Sequence[str]) -> str:
    """A document's content hash with its ACL groups in it (unchanged when it has none).

    A document re-ingested with other groups then differs from the indexed one, so the
    change reaches its chunks, and the answer cache's entries citing it go stale.
    """
    groups = sorted(set(acl))
    return content_hash(f"{digest}\x1facl:{','.join(groups)}") if groups else digest


def chunk_key(doc_id: str, piece_hash: str, acl: Sequence[str]) -> str:
    """A chunk's id: its document, its text and (when it has any) its ACL groups.

    Ids change with the groups, so an answer cached with a chunk read under the old
    groups is never stored, nor served, as citing the new one.
    """
    groups = sorted(set(acl))
    if not groups:
        return stable_id(doc_id, piece_hash)
    return stable_id(doc_id, piece_hash, "acl:" + ",".join(groups))
