"""
A minimal, dependency-free PDF and PNG writer.

:func:`make_pdf` writes text-only PDFs with the standard Helvetica fonts (no embedding), one
string per line, uncompressed content streams and an exact cross-reference table, so that
``pypdf`` reads every page and ``extract_text()`` gives the lines back. The output is
deterministic (no dates, no random ids): regenerating a sample document gives the same bytes.

:func:`make_png` writes a truecolour PNG from a pixel function, with ``zlib`` and ``struct``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

PAGE_WIDTH = 612
PAGE_HEIGHT = 792
_LEFT = 72
_TOP = 730
_TITLE_SIZE = 16
_BODY_SIZE = 11
_LEADING = 15


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsi (Latin-1 subset); other characters become ``?``."""
    raw = text.encode("cp1252", errors="replace")
    out = bytearray(b"(")
    for byte in raw:
        if byte in (0x28, 0x29, 0x5C):  # ( ) backslash
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte > 0x7E:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    out += b")"
    return bytes(out)


def _page_content(lines: list[str], *, title: bool) -> bytes:
    """The content stream of one page: the lines top to bottom, the first in bold if ``title``."""
    ops: list[bytes] = [b"BT"]
    y = _TOP
    for index, line in enumerate(lines):
        is_title = title and index == 0
        font = b"/F2 %d Tf" % _TITLE_SIZE if is_title else b"/F1 %d Tf" % _BODY_SIZE
        ops.append(font)
        ops.append(b"1 0 0 1 %d %d Tm" % (_LEFT, y))
        ops.append(_pdf_string(line) + b" Tj")
        y -= _LEADING + (10 if is_title else 0)
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def make_pdf(pages: list[list[str]], *, title: bool = True) -> bytes:
    """
    Write a PDF with one page per item of ``pages``, each a list of text lines.

    Lines are not wrapped: keep them under about 85 characters to stay on the page. With
    ``title`` (the default) the first line of the first page is set in Helvetica-Bold 16 pt,
    everything else in Helvetica 11 pt.

    :param pages: the text of each page, one string per line. An empty list makes a blank page.
    :return: the PDF file's bytes.
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    page_tree = add(b"")
    font_regular = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    font_bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    page_ids: list[int] = []
    for index, lines in enumerate(pages):
        stream = _page_content(list(lines), title=title and index == 0)
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] "
                b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> /Contents %d 0 R >>"
                % (page_tree, PAGE_WIDTH, PAGE_HEIGHT, font_regular, font_bold, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % page_tree
    kids = b" ".join(b"%d 0 R" % pid for pid in page_ids)
    objects[page_tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    info = add(b"<< /Producer (airflow-provider-mineru emulator) >>")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\n" % (len(objects) + 1, catalog, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """
    Write an 8-bit RGB PNG of ``width`` x ``height`` whose pixel at (x, y) is ``pixel(x, y)``.

    :return: the PNG file's bytes (deterministic).
    """
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes(pixel(x, y))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )
