"""The text a chunk is embedded by: its heading path, then its own text."""

from __future__ import annotations

from app.retrieval.passage import CONTEXT_CHARS, context_line, indexed_text
from app.retrieval.types import Chunk


def _chunk(text: str, heading: str = "") -> Chunk:
    return Chunk("c", "d", "t", "s.html", text, (0, len(text)), "h", heading=heading)


def test_the_heading_path_leads_the_embedded_text_and_the_chunk_keeps_its_own() -> None:
    chunk = _chunk("FULL selects a full rewrite.", "VACUUM > Parameters")
    assert indexed_text(chunk) == "VACUUM > Parameters\n\nFULL selects a full rewrite."
    assert chunk.text == "FULL selects a full rewrite."


def test_no_heading_or_a_text_that_already_starts_with_it_is_embedded_as_is() -> None:
    assert indexed_text(_chunk("Plain text.")) == "Plain text."
    # A BEIR entry's text is its title, then its body: the title is not said twice.
    assert indexed_text(_chunk("Eiffel Tower The tower is", "Eiffel Tower")).count("Eiffel") == 1


def test_a_long_or_ragged_heading_is_clipped_at_a_word() -> None:
    assert context_line("  A \n\t > B  ") == "A > B"
    line = context_line(" > ".join(["Section heading"] * 40))
    assert len(line) <= CONTEXT_CHARS and line.endswith("heading")
    assert context_line("x" * 500) == "x" * CONTEXT_CHARS
