"""The bridge to ``unstructured``: offline setup, its text classifier, element conversion.

Every import of ``unstructured`` goes through :func:`partitioners`, which first switches off
its network features:

* ``DO_NOT_TRACK`` / ``SCARF_NO_ANALYTICS`` turn off the telemetry ping it sends at import
  (after running ``nvidia-smi``) and on each partition call; ``UNSTRUCTURED_DISABLE_NOTICE``
  its banner, which it prints to stdout (into ``ragent ingest --json`` output).
* unstructured tells narrative text from titles with spaCy (sentence count, "has a verb"), and
  for that loads the model ``en_core_web_sm``, which it downloads and pip-installs from GitHub
  at first use. We give it :class:`RuleBasedNLP` instead: regular-expression sentences and
  words, no part-of-speech tags. Nothing to download, and parsing is about 15x faster than with
  the model (which made parsing, not embedding, most of the ingestion time). The cost: without
  tags a one-sentence paragraph counts as ``UncategorizedText`` rather than ``NarrativeText``.
  Titles, lists, tables and code come from the document structure (HTML tags, DOCX styles) and
  do not change; for PDF the PDF loader checks candidate titles against their font size.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.ingest.model import Element

if TYPE_CHECKING:
    from unstructured.documents.elements import Element as RawElement

__all__ = [
    "DROPPED_KINDS",
    "Partitioners",
    "RuleBasedNLP",
    "build_elements",
    "partitioners",
    "to_elements",
]

_OFFLINE_ENV = {"DO_NOT_TRACK": "1", "SCARF_NO_ANALYTICS": "1", "UNSTRUCTURED_DISABLE_NOTICE": "1"}
# Page furniture, not content: dropped wherever a partitioner reports it.
DROPPED_KINDS = frozenset({"Header", "Footer", "PageBreak", "PageNumber"})
# Our names where they differ from unstructured's categories (the cleaner knows "Code").
_KINDS = {"CodeSnippet": "Code"}
# A sentence ends at . ! or ? (maybe followed by a closing quote or bracket) before whitespace.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
_WORD = re.compile(r"\w+|[^\w\s]")


class _Text:
    """A token or a sentence: the part of spaCy's ``Token``/``Span`` unstructured reads."""

    __slots__ = ("text",)
    tag_ = ""  # no part-of-speech tags

    def __init__(self, text: str) -> None:
        self.text = text


class _Doc:
    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __iter__(self) -> Iterator[_Text]:
        return (_Text(word) for word in _WORD.findall(self._text))

    @property
    def sents(self) -> list[_Text]:
        return [_Text(s) for s in _SENTENCE_END.split(self._text.strip()) if s]


class RuleBasedNLP:
    """What unstructured's ``nlp.tokenize`` needs of a spaCy pipeline, without a model.

    unstructured 0.27 reads only ``max_length``, and of ``nlp(text)`` the tokens' ``text`` and
    ``tag_`` and the sentences' ``text``. Sentences end at ``.``, ``!`` or ``?`` before
    whitespace; words are runs of word characters, other characters are tokens of their own.
    """

    max_length = 1_000_000

    def __call__(self, text: str) -> _Doc:
        """Return the "document" for ``text``."""
        return _Doc(text)


@dataclass(frozen=True, slots=True)
class Partitioners:
    """The unstructured functions the loaders use, imported once, offline."""

    html: Callable[..., list[RawElement]]
    markdown: Callable[..., list[RawElement]]
    text: Callable[..., list[RawElement]]
    docx: Callable[..., list[RawElement]]
    element_from_text: Callable[..., RawElement]
    """Classify one block of text (Title, NarrativeText, ListItem, Header, Footer, ...)."""
    pixel_space: Callable[..., Any]
    """``PixelSpace(width, height)``: page coordinates with the origin at the top left."""


def _offline_environment() -> None:
    for key, value in _OFFLINE_ENV.items():
        if not os.environ.get(key, "").strip():
            os.environ[key] = value


def _use_rule_based_nlp() -> None:
    """Point unstructured's NLP helpers at :class:`RuleBasedNLP`."""
    from unstructured.nlp import tokenize

    if not callable(getattr(tokenize, "_get_nlp", None)):  # pragma: no cover - upgrade guard
        raise RuntimeError("unstructured.nlp.tokenize._get_nlp is gone: check the pinned version")
    nlp = RuleBasedNLP()
    # unstructured looks the function up on each call, so its model loader never runs.
    vars(tokenize)["_get_nlp"] = lambda: nlp


@functools.cache
def partitioners() -> Partitioners:
    """Import unstructured (about 2 s, so only when a file needs it), offline."""
    _offline_environment()
    _use_rule_based_nlp()
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.partition.docx import partition_docx
    from unstructured.partition.html import partition_html
    from unstructured.partition.md import partition_md
    from unstructured.partition.text import element_from_text, partition_text

    return Partitioners(
        html=partition_html,
        markdown=partition_md,
        text=partition_text,
        docx=partition_docx,
        element_from_text=element_from_text,
        pixel_space=PixelSpace,
    )


def table_text(html: str) -> str:
    """Render a table's HTML as text: one line per row, cells separated by tabs."""
    import lxml.etree  # type: ignore[import-untyped]  # lxml ships no type information
    import lxml.html  # type: ignore[import-untyped]

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return ""
    rows = []
    for row in root.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in row.xpath("./th|./td")]
        if any(cells):
            rows.append("\t".join(cells))
    return "\n".join(rows)


def build_elements(items: Iterable[tuple[str, str, int | None, int | None]]) -> list[Element]:
    """Make elements from ``(kind, text, title depth, page)``, building heading paths.

    Page furniture kinds are dropped and unstructured's names mapped to ours. A Title opens
    a section at its depth (0 is outermost; None counts as 0) and closes the open sections
    at the same or a deeper level.

    Returns:
        Non-empty elements: a Title's ``heading_path`` holds the titles above it, any other
        element's also the title of its own section.
    """
    elements: list[Element] = []
    open_sections: list[tuple[int, str]] = []
    for kind, text, depth, page in items:
        kind = _KINDS.get(kind, kind)
        text = text.strip()
        if kind in DROPPED_KINDS or not text:
            continue
        if kind == "Title":
            level = depth or 0
            while open_sections and open_sections[-1][0] >= level:
                open_sections.pop()
            path = tuple(title for _, title in open_sections)
            open_sections.append((level, " ".join(text.split())))
        else:
            path = tuple(title for _, title in open_sections)
        elements.append(Element(text=text, kind=kind, page=page, heading_path=path))
    return elements


def to_elements(raw: Iterable[RawElement], *, pages: bool = False) -> list[Element]:
    """Convert unstructured elements (see :func:`build_elements`).

    Titles nest by ``metadata.category_depth`` (HTML/Markdown: ``h1`` is 0, ``h2`` 1, ...;
    DOCX: from the heading style), not by ``metadata.parent_id``, which unstructured 0.27
    loses after an element its hierarchy rules do not know (a code block). A table's text
    is rebuilt from ``metadata.text_as_html``: one line per row, cells separated by tabs.

    Args:
        raw: Elements in reading order.
        pages: Keep ``metadata.page_number`` (only where the format has real pages).
    """

    def items() -> Iterable[tuple[str, str, int | None, int | None]]:
        for item in raw:
            meta: Any = item.metadata
            text = item.text
            if item.category == "Table" and meta.text_as_html:
                text = table_text(meta.text_as_html) or text
            yield item.category, text, meta.category_depth, meta.page_number if pages else None

    return build_elements(items())
