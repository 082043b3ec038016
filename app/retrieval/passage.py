"""The text a chunk is embedded by: its section's context line, then the chunk's own text.

A chunk of the VACUUM reference page's "Parameters" section says nothing of VACUUM by
itself; embedded after the line "VACUUM > Parameters", its vector knows what it is about.
The stored and displayed chunk text and its citation span stay the chunk's own. The keyword
engines (tantivy, Elasticsearch, Weaviate) index the same heading path as a field searched
together with the text, so both sides of hybrid search see the same context.
"""

from __future__ import annotations

from app.retrieval.types import Chunk

__all__ = ["CONTEXT_CHARS", "context_line", "indexed_text"]

CONTEXT_CHARS = 160
"""The longest context line: a heading path runs past it only in odd documents, and every
character of context takes room in the embedder's window from the chunk's own text."""


def context_line(heading: str) -> str:
    """Return the line that leads a chunk's embedded text: its heading path, clipped.

    Args:
        heading: The chunk's heading path, outermost first, joined by ``" > "`` (the
            document's title, where it has one, is its first part).

    Returns:
        The heading with runs of whitespace made single spaces, cut to at most
        :data:`CONTEXT_CHARS` characters at a word boundary; ``""`` for no heading.
    """
    line = " ".join(heading.split())
    if len(line) <= CONTEXT_CHARS:
        return line
    cut = line[: CONTEXT_CHARS + 1].rsplit(" ", 1)[0]
    return cut if 0 < len(cut) <= CONTEXT_CHARS else line[:CONTEXT_CHARS]


def indexed_text(chunk: Chunk) -> str:
    """Return the text a chunk is embedded by: its context line, a blank line, its text.

    Args:
        chunk: The chunk, with its heading path in ``heading``.

    Returns:
        ``chunk.text`` alone when it has no heading or already starts with its context line.
    """
    line = context_line(chunk.heading)
    if not line or chunk.text.startswith(line):
        return chunk.text
    return f"{line}\n\n{chunk.text}"
