"""Hostile files, made on the fly: decompression bombs, entity expansion, deep nesting.

Each is small on disk (a few hundred KB at most) and expands to what its name says once a
parser reads it. Shared by the loader, pipeline and HTTP tests and by ``bench/hostile.py``.
"""

from __future__ import annotations

import binascii
import io
import zipfile
import zlib
from collections.abc import Iterator

_MIB = 1 << 20
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _template_docx() -> zipfile.ZipFile:
    import docx  # python-docx, which unstructured reads DOCX with

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def docx_with(parts: Iterator[bytes]) -> bytes:
    """A real DOCX (python-docx's template) whose ``word/document.xml`` is ``parts`` joined."""
    out = io.BytesIO()
    with _template_docx() as template, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in template.infolist():
            if entry.filename != "word/document.xml":
                zf.writestr(entry, template.read(entry))
        with zf.open("word/document.xml", "w", force_zip64=True) as part:
            for piece in parts:
                part.write(piece)
    return out.getvalue()


def docx_text(text: str) -> bytes:
    """A DOCX with one paragraph of ``text``."""
    body = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
    return docx_with(iter([f"<w:document {_W}><w:body>{body}</w:body></w:document>".encode()]))


def docx_bomb(inflated: int = 100_000_000) -> bytes:
    """A DOCX of about 100 KB whose document part inflates to ``inflated`` bytes of paragraphs."""
    paragraph = b"<w:p><w:r><w:t>" + b"All work and no play. " * 40 + b"</w:t></w:r></w:p>"
    chunk = paragraph * (_MIB // len(paragraph))

    def parts() -> Iterator[bytes]:
        yield f"<w:document {_W}><w:body>".encode()
        for _ in range(inflated // len(chunk)):
            yield chunk
        yield b"</w:body></w:document>"

    return docx_with(parts())


def _dtd_docx(dtd: str, reference: str) -> bytes:
    body = f"<w:p><w:r><w:t>Quarterly report {reference}</w:t></w:r></w:p>"
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE w:document [{dtd}]>\n'
        f"<w:document {_W}><w:body>{body}</w:body></w:document>"
    )
    return docx_with(iter([xml.encode()]))


def docx_billion_laughs(levels: int = 10) -> bytes:
    """A DOCX whose document part declares nested entities that expand 10**levels times."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)
    ]
    return _dtd_docx("".join(entities), f"&lol{levels - 1};")


def docx_external_entity(target: str = "file:///etc/passwd") -> bytes:
    """A DOCX whose document part pulls ``target`` in through an external entity (XXE)."""
    return _dtd_docx(f'<!ENTITY xxe SYSTEM "{target}">', "&xxe;")


def zlib_bomb(inflated: int) -> bytes:
    """A zlib stream of ``inflated`` spaces (rounded down to MiB), about 1000 times smaller.

    Each MiB is one deflate block after a full flush, so all but the first compress to the
    same bytes: repeating them makes a gigabyte stream in well under a second.
    """
    chunk = b" " * _MIB
    count = max(1, inflated // _MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeat = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(count):
        checksum = zlib.adler32(chunk, checksum)
    body = first + repeat * (count - 1) + deflate.flush()
    return b"\x78\xda" + body + checksum.to_bytes(4, "big")


def pdf_with_stream(stream: bytes, filters: str = "/FlateDecode") -> bytes:
    """A one-page PDF whose page content is ``stream``, declared with ``filters``."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter %s >>\nstream\n%s\nendstream"
        % (len(stream), filters.encode(), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_text(text: str) -> bytes:
    """A one-page PDF that shows ``text`` (ASCII) in Helvetica, its stream compressed."""
    content = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("ascii")
    return pdf_with_stream(zlib.compress(content))


def pdf_bomb(inflated: int = 1 << 30) -> bytes:
    """A PDF of about 1 MB whose page content (FlateDecode) inflates to ``inflated`` bytes."""
    return pdf_with_stream(zlib_bomb(inflated))


def pdf_hidden_bomb(inflated: int) -> bytes:
    """A PDF whose zlib bomb hides under ASCIIHexDecode: only the parse can find it."""
    encoded = binascii.hexlify(zlib_bomb(inflated)) + b">"
    return pdf_with_stream(encoded, "[/ASCIIHexDecode /FlateDecode]")


def deep_html(depth: int = 100_000) -> bytes:
    """HTML with ``depth`` nested ``<div>`` elements around its only text."""
    return b"<html><body>" + b"<div>" * depth + b"text" + b"</div>" * depth + b"</body></html>"


def deep_markdown_list(depth: int = 3000) -> bytes:
    """A Markdown list nested ``depth`` levels deep (the renderer recurses on each level)."""
    return "".join(" " * (2 * level) + "- item\n" for level in range(depth)).encode()


def deep_markdown_quote(depth: int = 100_000) -> bytes:
    """One Markdown line quoted ``depth`` times."""
    return b">" * depth + b" quoted"
