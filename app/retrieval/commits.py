"""Commit markers: which chunks of each document a remote engine may show.

Neither Weaviate nor Elasticsearch can replace a document's chunks in one transaction,
and they share none with each other. So each engine keeps, beside its chunks, one small
marker per document that lists the chunk ids of the committed version, and a search
drops any hit whose chunk id is not in its document's marker. A replace then writes the
new chunks (hidden: their ids are not in the marker yet), switches the marker in one
write, and only then deletes the chunks the new version no longer has. Whenever an
engine or the writer dies, a reader sees the old version or the new one, never a part
of one:

* a new document gets an empty marker before any chunk is written, so a write that
  stops half-way shows nothing;
* chunks whose text did not change keep their ids (ids are a hash of the document and
  the text) and are rewritten in place with the same text, so they stay visible;
* a delete first empties the marker, then removes the chunks, then the marker.

Documents written before markers existed have none and stay visible as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from app.retrieval.types import Hit

__all__ = ["CommitMarkers", "visible_hits"]


class CommitMarkers(Protocol):
    """One engine's markers (see the module docstring)."""

    def begin(self, tenant_id: str, doc_id: str) -> None:
        """Give a document that has no marker an empty one, hiding it until commit."""
        ...

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """Make exactly ``chunk_ids`` the visible chunks of the document."""
        ...

    def forget(self, tenant_id: str, doc_id: str) -> None:
        """Remove the document's marker (after its chunks are gone)."""
        ...

    def committed(self, tenant_id: str, doc_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        """The committed chunk ids of those of ``doc_ids`` that have a marker."""
        ...


def visible_hits(
    tenant_id: str,
    hits: list[Hit],
    committed: Callable[[str, Iterable[str]], Mapping[str, frozenset[str]]],
) -> list[Hit]:
    """Drop the hits that their document's marker does not list (order kept).

    Args:
        tenant_id: The tenant every hit belongs to (searches are per tenant).
        hits: An engine's hits, best first.
        committed: :meth:`CommitMarkers.committed` of that engine.
    """
    if not hits:
        return hits
    markers = committed(tenant_id, {h.chunk.doc_id for h in hits})
    return [
        h
        for h in hits
        if h.chunk.doc_id not in markers or h.chunk.chunk_id in markers[h.chunk.doc_id]
    ]
