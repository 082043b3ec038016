"""PDF loader: unstructured's ``fast`` strategy, pdfminer text boxes classified by unstructured.

``unstructured.partition.pdf`` cannot be imported without ``unstructured-inference`` (its
pdfminer helpers import it at module level, even for ``strategy="fast"``), and that pulls a
CUDA torch stack and model-hub downloads. So this module does what the fast strategy does:
pdfminer lays out each page, and each text box goes through unstructured's
``element_from_text`` with its coordinates, which also marks running headers and footers by
position (dropped). Two additions: a candidate Title counts only when its font is larger than
the body text, and its size ranks its heading level.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.ingest.loaders._files import LoadError
from app.ingest.loaders._unstructured import build_elements, partitioners
from app.ingest.model import Element

if TYPE_CHECKING:
    from pdfminer.layout import LTTextContainer, LTTextLine

__all__ = ["load_pdf"]

_log = logging.getLogger(__name__)
# A heading's font is at least this many points larger than the body text's.
_HEADING_MIN_STEP = 1.0
_PARAGRAPHS = re.compile(r"\n\s*\n")
# What broken PDFs make pdfminer and pypdf raise besides their own exception types.
_BROKEN = (ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class _Block:
    page: int
    text: str
    size: float
    """The most common font size of its characters, rounded to half a point (0: unknown)."""
    box: tuple[float, float, float, float] | None = None
    """``x0, top, x1, bottom`` in points from the page's top-left corner (pdfminer only)."""
    page_size: tuple[float, float] = (0.0, 0.0)


def load_pdf(data: bytes) -> list[Element]:
    """Extract a PDF's text as elements with page numbers and font-based heading paths.

    Raises:
        LoadError: Not a PDF, encrypted (needs a password), or corrupt.
    """
    if b"%PDF-" not in data[:1024]:
        raise LoadError("not a PDF file (the content does not match the .pdf extension)")
    from pdfminer.pdfdocument import PDFEncryptionError
    from pdfminer.psexceptions import PSException

    blocks: list[_Block] = []
    empty_pages: list[int] = []
    try:
        for number, page_blocks in enumerate(_pdfminer_pages(data), start=1):
            blocks.extend(page_blocks)
            if not page_blocks:
                empty_pages.append(number)
    except PDFEncryptionError:
        raise LoadError("encrypted PDF") from None
    except (PSException, *_BROKEN) as exc:
        raise LoadError(f"corrupt PDF: {type(exc).__name__}: {exc}") from None
    if empty_pages:
        # pdfminer finds no text boxes where a page draws its text through a form XObject
        # (it reports an LTFigure instead); this is how the fast strategy "returns nothing".
        # pypdf reads those pages' text, without layout or font sizes.
        blocks = _with_fallback(data, blocks, empty_pages)
    return _classify(blocks)


def _pdfminer_pages(data: bytes) -> Iterator[list[_Block]]:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTTextContainer
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    document = PDFDocument(PDFParser(io.BytesIO(data)), password="")
    resources = PDFResourceManager(caching=True)
    device = PDFPageAggregator(resources, laparams=LAParams())
    interpreter = PDFPageInterpreter(resources, device)
    for number, page in enumerate(PDFPage.create_pages(document), start=1):
        interpreter.process_page(page)
        layout = device.get_result()
        page_size = (layout.width, layout.height)
        blocks = []
        for box in layout:
            if isinstance(box, LTTextContainer):
                for size, lines in _runs_by_size(box):
                    text = " ".join(" ".join(line.get_text() for line in lines).split())
                    if text:
                        x0 = min(line.x0 for line in lines)
                        x1 = max(line.x1 for line in lines)
                        top = layout.height - max(line.y1 for line in lines)
                        bottom = layout.height - min(line.y0 for line in lines)
                        blocks.append(_Block(number, text, size, (x0, top, x1, bottom), page_size))
        yield blocks


def _runs_by_size(box: LTTextContainer[Any]) -> Iterator[tuple[float, list[LTTextLine]]]:
    """Split a text box where the font size changes between lines.

    pdfminer often puts a heading and the paragraph under it in one box; split, the heading
    is a block of its own with its own (larger) size.
    """
    from pdfminer.layout import LTChar, LTTextLine

    lines = [box] if isinstance(box, LTTextLine) else [x for x in box if isinstance(x, LTTextLine)]
    run: list[LTTextLine] = []
    run_size = 0.0
    for line in lines:
        sizes = Counter(round(c.size * 2) / 2 for c in line if isinstance(c, LTChar))
        size = sizes.most_common(1)[0][0] if sizes else run_size
        if run and size != run_size:
            yield run_size, run
            run = []
        run.append(line)
        run_size = size
    if run:
        yield run_size, run


def _with_fallback(data: bytes, blocks: list[_Block], pages: list[int]) -> list[_Block]:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        texts = {number: reader.pages[number - 1].extract_text() for number in pages}
    except (pypdf.errors.PyPdfError, *_BROKEN) as exc:
        _log.info("pypdf could not read the pages pdfminer found empty: %s", exc)
        return blocks
    extra = [
        _Block(number, " ".join(paragraph.split()), size=0.0)
        for number, text in texts.items()
        for paragraph in _PARAGRAPHS.split(text or "")
        if paragraph.strip()
    ]
    if extra:
        _log.info("pdfminer found no text on %d page(s); used pypdf's text", len(pages))
    return sorted([*blocks, *extra], key=lambda block: block.page)


def _classify(blocks: list[_Block]) -> list[Element]:
    if not blocks:
        return []
    parts = partitioners()
    chars: Counter[float] = Counter()
    for block in blocks:
        if block.size:
            chars[block.size] += len(block.text)
    body = chars.most_common(1)[0][0] if chars else 0.0
    kinds: list[str] = []
    texts: list[str] = []
    for block in blocks:
        if block.box is not None:  # the position marks running headers and footers
            x0, top, x1, bottom = block.box
            points = ((x0, top), (x0, bottom), (x1, bottom), (x1, top))
            space = parts.pixel_space(width=block.page_size[0], height=block.page_size[1])
            raw = parts.element_from_text(block.text, coordinates=points, coordinate_system=space)
        else:
            raw = parts.element_from_text(block.text)
        kinds.append(str(raw.category))
        texts.append(str(raw.text))  # a ListItem loses its bullet
    heading_sizes = sorted(
        {
            b.size
            for b, k in zip(blocks, kinds, strict=True)
            if k == "Title" and _is_heading(b, body)
        },
        reverse=True,
    )
    level = {size: depth for depth, size in enumerate(heading_sizes)}

    def items() -> Iterator[tuple[str, str, int | None, int | None]]:
        for block, kind, text in zip(blocks, kinds, texts, strict=True):
            if kind == "Title" and not _is_heading(block, body):
                kind = "UncategorizedText"  # short and verb-less, but body-sized: not a heading
            yield kind, text, level.get(block.size), block.page

    return build_elements(items())


def _is_heading(block: _Block, body: float) -> bool:
    return bool(block.size and body and block.size >= body + _HEADING_MIN_STEP)
