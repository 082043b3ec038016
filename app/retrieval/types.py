"""Value types shared by every index engine."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "NAMESPACE_PATTERN",
    "NAMESPACE_SEPARATOR",
    "Chunk",
    "DocumentRecord",
    "Hit",
    "SearchFilter",
    "namespace_tenant",
]

NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""What a namespace of a tenant may be called."""

NAMESPACE_SEPARATOR = "#"
"""Namespace ``N`` of tenant ``T`` is stored as tenant ``T#N`` (tenant ids never hold #)."""


def namespace_tenant(tenant_id: str, namespace: str | None) -> str:
    """Return the tenant id under which a namespace's documents are indexed."""
    return f"{tenant_id}{NAMESPACE_SEPARATOR}{namespace}" if namespace else tenant_id


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document, as stored in the indexes."""

    chunk_id: str
    doc_id: str
    tenant_id: str
    source: str
    text: str
    span: tuple[int, int]
    """Character offsets ``[start, end)`` into the loaded document text."""
    content_hash: str
    acl: tuple[str, ...] = ()
    """Groups allowed to read the chunk; empty means every user of the tenant."""
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Who is searching. Every engine applies it inside its query."""

    tenant_id: str
    groups: frozenset[str] = field(default_factory=frozenset)

    def allows(self, chunk: Chunk) -> bool:
        """Return whether ``chunk`` is visible to this caller (used by tests and checks)."""
        return chunk.tenant_id == self.tenant_id and (
            not chunk.acl or bool(self.groups.intersection(chunk.acl))
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result with the engine's score (higher is better)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """What is indexed for one source: enough to skip unchanged content."""

    tenant_id: str
    doc_id: str
    source: str
    content_hash: str
    """Hash of the source's content as read (bytes of a file, text of a record)."""
    embed_model: str
    index_version: str = ""
    """Fingerprint of the pipeline settings that shaped the chunks; a change re-indexes."""
    chunk_ids: tuple[str, ...] = ()
