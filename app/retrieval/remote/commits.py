"""Commit markers: which chunks of each document a remote engine may show.

Neither Weaviate nor Elasticsearch can replace a document's chunks in one transaction,
and they share none with each other. So each engine keeps, beside its chunks, one small
marker per document that lists the chunk ids of the committed version, and a search
drops any hit whose chunk id is not in its document's marker. A replace then writes the
new chunks (hidden: their ids are not in the marker yet), switches the marker in one
write, and only then deletes the chunks the new version no longer has. Whenever an
engine or the writer dies, a reader sees the old version or the new one, never a part
of one:

* a document without a marker gets one before any chunk is written, listing the chunks
  it has then (:func:`begin_marker`): none for a new document, so a write that stops
  half-way shows nothing; every chunk of a document written before markers existed (or
  by a plain ``upsert``), so that version stays what readers see;
* chunks whose text did not change keep their ids (ids are a hash of the document and
  the text) and are rewritten in place with the same text, so they stay visible;
* a delete first empties the marker, then removes the chunks, then the marker.

Documents written before markers existed have none and stay visible as they are until
their first replace or delete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from app.retrieval.types import Hit

__all__ = ["CommitMarkers", "begin_marker", "visible_hits"]


class CommitMarkers(Protocol):
    """One engine's markers (see the module docstring)."""

    def begin(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str] = ()) -> None:
        """Give a document that has no marker one listing ``chunk_ids``; a marker is kept."""
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


def begin_marker(
    markers: CommitMarkers,
    tenant_id: str,
    doc_id: str,
    current_chunk_ids: Callable[[], Sequence[str]],
) -> None:
    """Make sure a document has a marker before a replace writes its new chunks.

    A marker already there is kept. A document without one gets a marker listing the
    chunks it has now, asked for only then: none for a new document, which so stays
    hidden until commit; every chunk of a document written before markers existed (or by
    a plain ``upsert``), which so stays visible as it is. An empty marker would hide that
    document until commit, or until a later replace commits if this one dies first.

    Args:
        markers: The engine's markers.
        tenant_id: The document's tenant.
        doc_id: The document.
        current_chunk_ids: The ids of every chunk the engine holds for the document.
    """
    if doc_id not in markers.committed(tenant_id, [doc_id]):
        markers.begin(tenant_id, doc_id, current_chunk_ids())


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
