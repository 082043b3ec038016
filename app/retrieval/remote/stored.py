"""How a chunk is stored in the remote engines: one flat record, the same for all of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.retrieval.types import Chunk

__all__ = ["PUBLIC", "chunk_fields", "fields_to_chunk"]

PUBLIC = "__public__"
"""Stored as the ACL of a chunk readable by the whole tenant, so visibility is one
"any of these groups" filter: the caller's groups plus this marker."""


def chunk_fields(chunk: Chunk, generation: str = "") -> dict[str, Any]:
    """Map a chunk to its stored fields (``page`` is left out when unknown).

    Args:
        chunk: The chunk.
        generation: The write that stored it; replaces delete other generations.

    Raises:
        ValueError: The ACL names the public marker, which would make the chunk public.
    """
    if PUBLIC in chunk.acl:
        raise ValueError(f"{PUBLIC!r} is reserved and cannot be an ACL group")
    fields: dict[str, Any] = {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "tenant_id": chunk.tenant_id,
        "source": chunk.source,
        "text": chunk.text,
        "span_start": chunk.span[0],
        "span_end": chunk.span[1],
        "content_hash": chunk.content_hash,
        "acl": sorted(set(chunk.acl)) or [PUBLIC],
        "heading": chunk.heading,
        "generation": generation,
    }
    if chunk.page is not None:
        fields["page"] = chunk.page
    return fields


def fields_to_chunk(fields: Mapping[str, Any]) -> Chunk:
    """Map stored fields back to a :class:`Chunk` (a lone ACL string is accepted too)."""
    acl = fields.get("acl") or ()
    page = fields.get("page")
    return Chunk(
        chunk_id=fields["chunk_id"],
        doc_id=fields["doc_id"],
        tenant_id=fields["tenant_id"],
        source=fields["source"],
        text=fields["text"],
        span=(int(fields["span_start"]), int(fields["span_end"])),
        content_hash=fields["content_hash"],
        acl=tuple(g for g in ([acl] if isinstance(acl, str) else acl) if g != PUBLIC),
        heading=fields.get("heading") or "",
        page=None if page is None else int(page),
    )
