"""The document model shared by loaders, cleaning, deduplication and chunking."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Element", "LoadedDocument"]


@dataclass(frozen=True, slots=True)
class Element:
    """One structural piece of a document, as a parser found it."""

    text: str
    kind: str = "NarrativeText"
    """The element type: Title, NarrativeText, ListItem, Table, Code, Record, ..."""
    page: int | None = None
    """1-based page number where the format has pages (PDF), else None."""
    heading_path: tuple[str, ...] = ()
    """Titles of the enclosing sections, outermost first."""


@dataclass(slots=True)
class LoadedDocument:
    """A parsed source: its elements in reading order, plus metadata.

    The document text is the elements' texts joined by :data:`SEPARATOR`; chunk
    spans are character offsets into that text (see :meth:`text` and :meth:`offsets`).
    """

    SEPARATOR = "\n\n"

    source: str
    """The path or URL as ingested (for records: ``<file>#<record key>``)."""
    elements: list[Element] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    """Extra fields kept with every chunk (records loader: the non-text columns)."""

    def text(self) -> str:
        """Return the full document text."""
        return self.SEPARATOR.join(e.text for e in self.elements)

    def offsets(self) -> list[tuple[int, int]]:
        """Return each element's ``[start, end)`` span in :meth:`text`."""
        spans = []
        position = 0
        for element in self.elements:
            spans.append((position, position + len(element.text)))
            position += len(element.text) + len(self.SEPARATOR)
        return spans
