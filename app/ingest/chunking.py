"""Token-aware recursive chunking with character spans."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from app.llm.tokens import TokenCounter

__all__ = ["TextChunk", "chunk_text", "content_hash", "stable_id"]


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A chunk of a document with its ``[start, end)`` character span."""

    text: str
    start: int
    end: int


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_id(*parts: str) -> str:
    """Return a stable 32-hex-digit id derived from ``parts``."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def chunk_text(text: str, *, counter: TokenCounter, size: int, overlap: int) -> list[TextChunk]:
    """Split ``text`` by paragraphs, lines, sentences then words, within ``size`` tokens.

    A chunk never splits a word: there is no character-level fallback separator.

    Args:
        text: The document text.
        counter: Measures chunk length in the embedder's tokens.
        size: The most tokens per chunk (a single over-long word may exceed it).
        overlap: Tokens shared between neighbouring chunks.

    Returns:
        The chunks, in document order, with spans into ``text``.
    """
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=counter.count,
        separators=["\n\n", "\n", ". ", "; ", ", ", " "],
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )
    chunks = []
    for doc in splitter.create_documents([text]):
        start = int(doc.metadata["start_index"])
        if start < 0:  # the splitter could not locate the piece; search from the top
            start = text.find(doc.page_content)
        chunks.append(TextChunk(doc.page_content, start, start + len(doc.page_content)))
    return chunks
