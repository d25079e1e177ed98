"""
Crafted PDFs for page counting: classic tables, cross-reference streams with object streams,
incremental updates, broken ``startxref``, and large scanned-style files written in bounded memory.

Used by ``tests/test_pdf_pages.py`` and ``bench/bench_pages.py``.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1024 * 1024


class _Writer:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.pos = 0
        self.offsets: dict[int, int] = {}

    def raw(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def obj(self, num: int, body: bytes) -> None:
        self.offsets[num] = self.pos
        self.raw(b"%d 0 obj\n" % num + body + b"\nendobj\n")

    def stream(self, num: int, dictionary: bytes, chunks: Iterator[bytes], length: int) -> None:
        self.offsets[num] = self.pos
        self.raw(b"%d 0 obj\n<< %s /Length %d >>\nstream\n" % (num, dictionary, length))
        for chunk in chunks:
            self.raw(chunk)
        self.raw(b"\nendstream\nendobj\n")

    def classic_xref(self, size: int, trailer_extra: bytes = b"", startxref_delta: int | None = 0) -> None:
        start = self.pos
        self.raw(b"xref\n0 %d\n" % size)
        self.raw(b"0000000000 65535 f \n")
        for num in range(1, size):
            self.raw(b"%010d 00000 n \n" % self.offsets.get(num, 0))
        self.raw(b"trailer\n<< /Size %d /Root 1 0 R %s >>\n" % (size, trailer_extra))
        where = b"999999999999" if startxref_delta is None else b"%d" % (start + startxref_delta)
        self.raw(b"startxref\n" + where + b"\n%%EOF\n")


def _random_chunks(total: int, seed: int = 7) -> Iterator[bytes]:
    block = os.urandom(_CHUNK) if seed is None else (bytes(range(256)) * (_CHUNK // 256))
    block = bytearray(block)
    sent = 0
    counter = seed
    while sent < total:
        n = min(_CHUNK, total - sent)
        block[0:8] = counter.to_bytes(8, "big")  # every chunk differs a little
        counter += 1
        yield bytes(block[:n])
        sent += n


def classic_pdf(
    path: str | Path,
    pages: int,
    *,
    image_bytes: int = 0,
    pad_bytes: int = 0,
    startxref_delta: int | None = 0,
    count_as_ref: bool = False,
) -> Path:
    """
    A PDF with a classic ``xref`` table.

    :param pages: pages in the tree (a flat ``/Kids`` list).
    :param image_bytes: total bytes of image streams (one per page): a scanned-style file.
    :param pad_bytes: a comment block of this size before the objects (a large file cheaply).
    :param startxref_delta: added to the true ``startxref`` offset; ``None`` writes a wild offset
        (the file's cross-reference table must be rebuilt to read it).
    :param count_as_ref: write ``/Count`` as an indirect reference.
    """
    path = Path(path)
    with open(path, "wb") as out:
        w = _Writer(out)
        w.raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        if pad_bytes:
            line = b"%" + b"p" * 98 + b"\n"
            for _ in range(pad_bytes // len(line)):
                w.raw(line)
        first_page = 4
        kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(pages))
        w.obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        count = b"3 0 R" if count_as_ref else b"%d" % pages
        w.obj(2, b"<< /Type /Pages /Kids [%s] /Count %s >>" % (kids, count))
        w.obj(3, b"%d" % pages)
        per_image = image_bytes // pages if pages and image_bytes else 0
        for i in range(pages):
            num = first_page + 2 * i
            if per_image:
                w.obj(
                    num,
                    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    b"/Resources << /XObject << /Im0 %d 0 R >> >> >>" % (num + 1),
                )
                w.stream(
                    num + 1,
                    b"/Type /XObject /Subtype /Image /Width 2480 /Height 3508 /ColorSpace /DeviceGray "
                    b"/BitsPerComponent 8 /Filter /DCTDecode",
                    _random_chunks(per_image, seed=i),
                    per_image,
                )
            else:
                w.obj(num, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>")
                w.obj(num + 1, b"<< >>")
        w.classic_xref(first_page + 2 * pages, startxref_delta=startxref_delta)
    return path


def _xref_stream_rows(rows: list[tuple[int, int, int]], widths: tuple[int, int, int]) -> bytes:
    data = bytearray()
    previous = bytes(sum(widths))
    for kind, a, b in rows:
        row = kind.to_bytes(widths[0], "big") + a.to_bytes(widths[1], "big") + b.to_bytes(widths[2], "big")
        data.append(2)  # PNG "Up" predictor
        data += bytes((x - y) & 0xFF for x, y in zip(row, previous, strict=True))
        previous = row
    return bytes(data)


def xref_stream_pdf(path: str | Path, pages: int, *, pad_bytes: int = 0) -> Path:
    """
    A PDF 1.5 file: catalog and page tree root inside a compressed object stream, located by a
    cross-reference stream with the PNG predictor (what most current writers produce).
    """
    path = Path(path)
    with open(path, "wb") as out:
        w = _Writer(out)
        w.raw(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
        if pad_bytes:
            line = b"%" + b"p" * 98 + b"\n"
            for _ in range(pad_bytes // len(line)):
                w.raw(line)
        first_page = 4
        for i in range(pages):
            w.obj(first_page + i, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>")
        kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
        members = [
            (1, b"<< /Type /Catalog /Pages 2 0 R >>"),
            (2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)),
        ]
        header, body = b"", b""
        for num, text in members:
            header += b"%d %d " % (num, len(body))
            body += text + b"\n"
        objstm_num = first_page + pages
        packed = zlib.compress(header + body)
        w.stream(
            objstm_num,
            b"/Type /ObjStm /N %d /First %d /Filter /FlateDecode" % (len(members), len(header)),
            iter([packed]),
            len(packed),
        )
        xref_num = objstm_num + 1
        w.offsets[xref_num] = w.pos
        size = xref_num + 1
        rows = [(0, 0, 65535)]
        for num in range(1, size):
            if num in (1, 2):
                rows.append((2, objstm_num, num - 1))
            elif num == 3:
                rows.append((0, 0, 0))
            else:
                rows.append((1, w.offsets[num], 0))
        widths = (1, 4, 2)
        packed = zlib.compress(_xref_stream_rows(rows, widths))
        xref_start = w.pos
        w.stream(
            xref_num,
            b"/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Filter /FlateDecode "
            b"/DecodeParms << /Predictor 12 /Columns 7 >>" % size,
            iter([packed]),
            len(packed),
        )
        w.raw(b"startxref\n%d\n%%%%EOF\n" % xref_start)
    return path


def incremental_pdf(path: str | Path, pages: int, added: int) -> Path:
    """A classic PDF followed by an incremental update that adds ``added`` pages (``/Prev`` chain)."""
    path = Path(path)
    classic_pdf(path, pages)
    data = path.read_bytes()
    old_xref = int(data.rsplit(b"startxref", 1)[1].split()[0])
    with open(path, "ab") as out:
        pos = len(data)
        offsets = {}
        first_new = 4 + 2 * pages
        chunks = []
        for i in range(added):
            num = first_new + i
            offsets[num] = pos
            chunk = b"%d 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n" % num
            chunks.append(chunk)
            pos += len(chunk)
        kids = b" ".join(
            [b"%d 0 R" % (4 + 2 * i) for i in range(pages)] + [b"%d 0 R" % (first_new + i) for i in range(added)]
        )
        offsets[2] = pos
        chunk = b"2 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n" % (kids, pages + added)
        chunks.append(chunk)
        pos += len(chunk)
        xref = pos
        table = b"xref\n2 1\n%010d 00000 n \n%d %d\n" % (offsets[2], first_new, added)
        table += b"".join(b"%010d 00000 n \n" % offsets[first_new + i] for i in range(added))
        table += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
            first_new + added,
            old_xref,
            xref,
        )
        out.write(b"".join(chunks) + table)
    return path
