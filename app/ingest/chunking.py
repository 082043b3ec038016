"""Structure-aware chunking measured in the embedder's tokens, with exact character spans.

A document's elements are grouped into sections (a Title starts one; so does a change of
``heading_path``). Each section is packed greedily into chunks of at most ``size`` tokens; an
element too large for one chunk is split by paragraphs, lines, sentences, clauses, then words
(tables: rows, then words; code: paragraphs, lines, words). Words are never split: a single
word over ``size`` tokens becomes a chunk of its own. A chunk is always the contiguous slice
``doc.text()[start:end]``, so a section's title starts its first chunk only. Chunks that are
embedded after their context line (:func:`app.retrieval.passage.indexed_text`) leave room
for it: their section's heading path takes its tokens from ``size``.

Token counts come from :class:`~app.ingest.token_meter.TokenMeter`: exact for WordPiece
(BERT, MiniLM). A counter that is not (byte-level BPE, the 4-chars estimate) gets every fit
decided by a real count of the candidate chunk: slower, never over.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from app.ingest.model import Element, LoadedDocument
from app.ingest.token_meter import TokenMeter
from app.llm.tokens import TokenCounter
from app.retrieval.passage import context_line

__all__ = [
    "SPECIAL_TOKENS",
    "ChunkingConfigError",
    "DocChunk",
    "chunk_document",
    "default_chunk_size",
    "default_overlap",
    "validate_chunking",
]

SPECIAL_TOKENS = 2
"""[CLS] and [SEP]: the embedder's window holds this many tokens besides the chunk's."""
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_LINE = re.compile(r"\s*\n\s*")
_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
_CLAUSE = re.compile(r"(?<=[;:,])\s+")
_SPACE = re.compile(r"\s+")
_PROSE = (_PARAGRAPH, _LINE, _SENTENCE, _CLAUSE, _SPACE)
_LEVELS = {"Table": (_LINE, _SPACE), "Code": (_PARAGRAPH, _LINE, _SPACE)}
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


class ChunkingConfigError(ValueError):
    """The chunk size or overlap does not fit the embedder."""


def default_chunk_size(max_tokens_of_embedder: int) -> int:
    """Return ``min(512, window - 2)``: 254 for all-MiniLM-L6-v2's 256-token window."""
    return min(512, max_tokens_of_embedder - SPECIAL_TOKENS)


def default_overlap(size: int) -> int:
    """Return 64 tokens for 512-token chunks, scaled down proportionally (254 -> 32)."""
    return round(64 * min(size, 512) / 512)


def validate_chunking(size: int, overlap: int, *, window: int) -> None:
    """Check a chunking configuration against the embedder's window (call at start-up).

    Raises:
        ChunkingConfigError: ``size`` exceeds ``window - 2`` (the tail of every longer chunk
            would be silently truncated before embedding) or ``overlap`` is not in ``[0, size)``.
    """
    most = window - SPECIAL_TOKENS
    if not 0 < size <= most:
        raise ChunkingConfigError(
            f"chunk size {size} tokens does not fit the embedder: its window of {window} tokens "
            f"holds at most {most} besides {SPECIAL_TOKENS} special tokens, and longer chunks "
            f"are silently truncated; use at most {most} (default {default_chunk_size(window)})"
        )
    if not 0 <= overlap < size:
        raise ChunkingConfigError(f"chunk overlap {overlap} must be in [0, {size})")


@dataclass(frozen=True, slots=True)
class DocChunk:
    """A chunk: ``text == doc.text()[span[0]:span[1]]``, with its structural context."""

    text: str
    span: tuple[int, int]
    heading_path: tuple[str, ...]
    """Titles of the section the chunk belongs to, outermost first."""
    page: int | None
    """Page of the chunk's first character (None where the format has no pages)."""
    kinds: tuple[str, ...]
    """Kinds of the elements the chunk covers, each once, in order."""
    tokens: int
    """Tokens by the chunker's counter; above ``size`` only for a single over-long word."""


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece of an element; ``levels[depth]`` is the separator that would split it further."""

    start: int
    end: int
    tokens: int
    levels: tuple[re.Pattern[str], ...]
    depth: int
    title: bool


def _pieces(text: str, start: int, end: int, sep: re.Pattern[str]) -> list[tuple[int, int]]:
    """Return the non-blank pieces of ``text[start:end]`` between ``sep`` matches, trimmed."""
    cuts = [start, *(i for m in sep.finditer(text, start, end) for i in m.span()), end]
    pieces = []
    for s, e in zip(cuts[::2], cuts[1::2], strict=True):
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            pieces.append((s, e))
    return pieces


class _Chunker:
    def __init__(
        self, doc: LoadedDocument, counter: TokenCounter, size: int, overlap: int, context: bool
    ):
        self.doc, self.counter, self.size, self.overlap = doc, counter, size, overlap
        self.limit, self.context = size, context
        self.text = doc.text()
        self.meter = TokenMeter(self.text, counter)
        self.offsets = doc.offsets()
        self.element_starts = [start for start, _ in self.offsets]

    def run(self) -> list[DocChunk]:
        chunks: list[DocChunk] = []
        for path, indexes in _sections(self.doc.elements):
            self.size = self.limit - self._context_tokens(path)
            units = [u for i in indexes for u in self._element_units(i)]
            chunks.extend(self._make(start, end, path) for start, end in self._pack(units))
        return chunks

    def _context_tokens(self, path: tuple[str, ...]) -> int:
        """Tokens the section's context line takes in the embedder's window (at most size-1)."""
        line = context_line(" > ".join(path)) if self.context else ""
        if not line:
            return 0
        # One more for the blank line between them, where a counter is not exact.
        tokens = self.counter.count(line) + (0 if self.meter.exact else 1)
        return min(tokens, self.limit - 1)

    def _element_units(self, i: int) -> Iterator[_Unit]:
        element = self.doc.elements[i]
        start, end = self.offsets[i]
        words = self.meter.starts
        first = bisect_left(words, start)
        last = bisect_left(words, end) - 1
        if first > last:
            return
        levels = _LEVELS.get(element.kind, _PROSE)
        span = (words[first], self.meter.ends[last])
        yield from self._split(*span, levels, 0, element.kind == "Title")

    def _split(
        self, start: int, end: int, levels: tuple[re.Pattern[str], ...], depth: int, title: bool
    ) -> Iterator[_Unit]:
        if depth >= len(levels) or self._fits(start, end):
            yield _Unit(start, end, self.meter.tokens(start, end), levels, depth, title)
            return
        for s, e in _pieces(self.text, start, end, levels[depth]):
            yield from self._split(s, e, levels, depth + 1, title)

    def _split_further(self, unit: _Unit) -> list[_Unit]:
        """Split a unit that fits by the next separator that cuts it (for a title's sake)."""
        for depth in range(unit.depth, len(unit.levels)):
            pieces = _pieces(self.text, unit.start, unit.end, unit.levels[depth])
            if len(pieces) > 1:
                args = (unit.levels, depth + 1, unit.title)
                return [u for s, e in pieces for u in self._split(s, e, *args)]
        return [unit]

    def _fits(self, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` fits: by prefix sums if exact, else by a real count."""
        if self.meter.exact:
            return self.meter.tokens(start, end) <= self.size
        return self.counter.count(self.text[start:end]) <= self.size

    def _pack(self, units: list[_Unit]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        queue = deque(units)
        start: int | None = None
        end, titles_only = 0, True
        while queue:
            unit = queue.popleft()
            if start is not None and not self._fits(start, unit.end):
                if titles_only:
                    pieces = self._split_further(unit)
                    if len(pieces) > 1:
                        queue.extendleft(reversed(pieces))
                        continue
                spans.append((start, end))
                start = self._overlap_start(start, end, self.size - unit.tokens)
                if start is not None and not self._fits(start, unit.end):
                    start = None
                titles_only = False
            if start is None:
                start, titles_only = unit.start, True
            end, titles_only = unit.end, titles_only and unit.title
        if start is not None:
            spans.append((start, end))
        return spans

    def _overlap_start(self, start: int, end: int, room: int) -> int | None:
        """Return where the next chunk starts so that it repeats ~overlap tokens of this one."""
        budget = min(self.overlap, room)
        if not self.meter.exact:
            budget = math.floor(budget / self.meter.scale)
        if budget <= 0:
            return None
        i, j = bisect_left(self.meter.starts, start), bisect_left(self.meter.starts, end)
        prefix = self.meter.prefix
        k = bisect_left(prefix, prefix[j] - budget, i + 1, j)
        for m in range(k, j):  # prefer whole sentences if they give at least half the overlap
            if self._starts_sentence(m):
                if 2 * self.meter.raw(m, j) >= budget:
                    k = m
                break
        return self.meter.starts[k] if k < j else None

    def _starts_sentence(self, m: int) -> bool:
        prev_end, here = self.meter.ends[m - 1], self.meter.starts[m]
        previous = self.text[self.meter.starts[m - 1] : prev_end]
        return "\n" in self.text[prev_end:here] or _SENTENCE_END.search(previous) is not None

    def _make(self, start: int, end: int, path: tuple[str, ...]) -> DocChunk:
        text = self.text[start:end]
        tokens = self.meter.tokens(start, end) if self.meter.exact else self.counter.count(text)
        first = bisect_right(self.element_starts, start) - 1
        last = bisect_right(self.element_starts, end - 1) - 1
        kinds = tuple(dict.fromkeys(el.kind for el in self.doc.elements[first : last + 1]))
        return DocChunk(text, (start, end), path, self.doc.elements[first].page, kinds, tokens)


def _heading_path(elements: Sequence[Element], indexes: list[int]) -> tuple[str, ...]:
    body = [elements[i] for i in indexes if elements[i].kind != "Title"]
    if body and body[0].heading_path:
        return body[0].heading_path
    titles = [elements[i] for i in indexes if elements[i].kind == "Title"]
    if not titles:
        return ()
    title = titles[-1]
    path = title.heading_path
    return path if path[-1:] == (title.text,) else (*path, title.text)


def _sections(elements: Sequence[Element]) -> Iterator[tuple[tuple[str, ...], list[int]]]:
    """Group element indexes: a Title opens a group (titles in a row share one)."""
    current: list[int] = []
    body: tuple[str, ...] | None = None
    for i, element in enumerate(elements):
        is_title = element.kind == "Title"
        joins = bool(current) and (body is None or (not is_title and element.heading_path == body))
        if not joins and current:
            yield _heading_path(elements, current), current
            current, body = [], None
        current.append(i)
        if not is_title:
            body = element.heading_path
    if current:
        yield _heading_path(elements, current), current


def chunk_document(
    doc: LoadedDocument, *, counter: TokenCounter, size: int, overlap: int, context: bool = False
) -> list[DocChunk]:
    """Split a document into section-aware chunks of at most ``size`` tokens.

    Args:
        doc: The (cleaned) document; spans index into ``doc.text()``.
        counter: The embedding model's tokenizer (see :func:`validate_chunking`).
        size: The most tokens per chunk, special tokens not included.
        overlap: About this many tokens, as whole sentences or words, are repeated between
            neighbouring chunks of one section; none across sections.
        context: The chunks are embedded after their section's context line: each section's
            chunks hold ``size`` tokens less the line's (never fewer than one).

    Returns:
        The chunks in document order.

    Raises:
        ChunkingConfigError: ``size`` < 1 or ``overlap`` outside ``[0, size)``.
    """
    if size < 1 or not 0 <= overlap < size:
        raise ChunkingConfigError(f"need size >= 1 and 0 <= overlap < size, got {size}/{overlap}")
    return _Chunker(doc, counter, size, overlap, context).run()
