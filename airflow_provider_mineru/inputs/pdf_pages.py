"""
Page count of a PDF from its trailer and page tree only, with bounded reads.

MinerU refuses documents over its page limit (-60006); the upload operators check local PDFs
first so the refusal costs no upload. A general PDF library is the wrong tool for that check: for
a file whose cross-reference table it cannot use (a wrong ``startxref``, the usual state of
scanned and concatenated PDFs) pypdf rebuilds the table by reading the whole file, 15 s of CPU
and hundreds of MB for a 150 MB scan.

:func:`count_pdf_pages` reads only what the count needs, seeking from the end:

1. the last 64 KiB, for ``startxref`` (a wrong offset is looked for within 1 KiB around it);
2. the cross-reference sections it points to, newest first, following ``/Prev`` (classic
   tables are not read, only seeked into: entry *n* of a subsection is at a fixed offset;
   cross-reference *streams* are decompressed, bounded);
3. the ``/Root`` catalog, its ``/Pages`` tree root and that node's ``/Count``, read with
   bounded reads at their offsets, also from compressed object streams (bounded).

Anything unusual (no usable ``startxref``, an encrypted object stream, a loop, a read or a
decompression over its bound) gives ``None``: "unknown", and MinerU judges the document. The
work is bounded whatever the file: at most :data:`MAX_READS` reads of at most
:data:`MAX_READ_BYTES` each, and :data:`MAX_INFLATE_BYTES` decompressed per stream.
"""

from __future__ import annotations

import os
import re
import zlib
from typing import IO, Any

__all__ = ["MAX_INFLATE_BYTES", "MAX_READS", "MAX_READ_BYTES", "count_pdf_pages", "count_pdf_pages_in"]

#: Bytes read from the end of the file to find ``startxref``.
TAIL_BYTES = 64 * 1024
#: Most bytes read in one step (an object, a stream's data).
MAX_READ_BYTES = 8 * 1024 * 1024
#: Most bytes a stream (cross-reference or object stream) may decompress to.
MAX_INFLATE_BYTES = 16 * 1024 * 1024
#: Most reads for one file, whatever it holds.
MAX_READS = 256
#: Most cross-reference sections followed through ``/Prev``.
MAX_SECTIONS = 16
#: A page count above this is not believed.
MAX_BELIEVABLE_PAGES = 10_000_000
#: How far around a wrong ``startxref`` offset the section is looked for.
XREF_SLACK = 1024

_WS = b" \t\r\n\f\x00"
_DELIMS = b"()<>[]{}/%"
_NUMBER_RE = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_OBJ_RE = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_STARTXREF_RE = re.compile(rb"startxref\s*(\d+)")
_DIGITS_RE = re.compile(rb"\d+")
_ARRAY_SPECIALS_RE = re.compile(rb"[\[\]()\\%]")
#: Dictionary keys whose array values the count needs; other arrays (a page tree's ``/Kids`` of
#: thousands of references) are skipped without being parsed.
_ARRAY_KEYS = frozenset({"W", "Index", "Filter", "DecodeParms"})


class _GiveUp(Exception):
    """The count cannot be read cheaply."""


class _Ref:
    __slots__ = ("gen", "num")

    def __init__(self, num: int, gen: int) -> None:
        self.num = num
        self.gen = gen

    def __repr__(self) -> str:
        return f"{self.num} {self.gen} R"


class _Name(str):
    """A PDF name (``/Type``), without the slash."""


# --------------------------------------------------------------------------------------------
# A small, bounded PDF object parser
# --------------------------------------------------------------------------------------------


class _Lexer:
    """Parses PDF objects from a bytes buffer; nesting and length are bounded by the buffer and ``max_depth``."""

    def __init__(self, data: bytes, pos: int = 0, max_depth: int = 32) -> None:
        self.data = data
        self.pos = pos
        self.max_depth = max_depth

    def skip_ws(self) -> None:
        data, n = self.data, len(self.data)
        while self.pos < n:
            c = data[self.pos]
            if c in _WS:
                self.pos += 1
            elif c == 0x25:  # % comment to end of line
                end = data.find(b"\n", self.pos)
                end2 = data.find(b"\r", self.pos)
                ends = [e for e in (end, end2) if e != -1]
                self.pos = min(ends) if ends else n
            else:
                break

    def keyword(self) -> bytes:
        self.skip_ws()
        start = self.pos
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] not in _WS and data[self.pos] not in _DELIMS:
            self.pos += 1
        return data[start : self.pos]

    def value(self, depth: int = 0) -> Any:
        if depth > self.max_depth:
            raise _GiveUp("nesting too deep")
        self.skip_ws()
        data = self.data
        if self.pos >= len(data):
            raise _GiveUp("truncated object")
        c = data[self.pos : self.pos + 1]
        if c == b"<":
            if data[self.pos : self.pos + 2] == b"<<":
                return self._dict(depth)
            end = data.find(b">", self.pos)
            if end == -1:
                raise _GiveUp("truncated hex string")
            self.pos = end + 1
            return b""
        if c == b"[":
            self.pos += 1
            items = []
            while True:
                self.skip_ws()
                if self.pos >= len(data):
                    raise _GiveUp("truncated array")
                if data[self.pos : self.pos + 1] == b"]":
                    self.pos += 1
                    return items
                items.append(self.value(depth + 1))
        if c == b"(":
            return self._string()
        if c == b"/":
            self.pos += 1
            return _Name(self.keyword().decode("latin-1"))
        match = _NUMBER_RE.match(data, self.pos)
        if match:
            self.pos = match.end()
            text = match.group()
            if b"." in text:
                return float(text)
            number = int(text)
            # "n g R": look ahead without consuming unless it is a reference.
            save = self.pos
            self.skip_ws()
            gen_match = _DIGITS_RE.match(data, self.pos)
            if gen_match:
                self.pos = gen_match.end()
                self.skip_ws()
                if data[self.pos : self.pos + 1] == b"R" and (
                    self.pos + 1 >= len(data) or data[self.pos + 1] in _WS or data[self.pos + 1] in _DELIMS
                ):
                    self.pos += 1
                    return _Ref(number, int(gen_match.group()))
            self.pos = save
            return number
        word = self.keyword()
        if not word:
            raise _GiveUp(f"unexpected byte {c!r}")
        if word == b"true":
            return True
        if word == b"false":
            return False
        if word == b"null":
            return None
        raise _GiveUp(f"unexpected keyword {word[:20]!r}")

    def _dict(self, depth: int) -> dict[str, Any]:
        self.pos += 2
        result: dict[str, Any] = {}
        data = self.data
        while True:
            self.skip_ws()
            if self.pos >= len(data):
                raise _GiveUp("truncated dictionary")
            if data[self.pos : self.pos + 2] == b">>":
                self.pos += 2
                return result
            key = self.value(depth + 1)
            if not isinstance(key, _Name):
                raise _GiveUp("dictionary key is not a name")
            self.skip_ws()
            if data[self.pos : self.pos + 1] == b"[" and key not in _ARRAY_KEYS:
                self._skip_array()
                result[str(key)] = None
            else:
                result[str(key)] = self.value(depth + 1)

    def _skip_array(self) -> None:
        """Move past an array without building it (only brackets, strings and comments matter)."""
        data, level = self.data, 0
        pos = self.pos
        while True:
            match = _ARRAY_SPECIALS_RE.search(data, pos)
            if match is None:
                raise _GiveUp("truncated array")
            char = match.group()
            if char == b"[":
                level += 1
                pos = match.end()
            elif char == b"]":
                level -= 1
                pos = match.end()
                if level == 0:
                    self.pos = pos
                    return
                if level > self.max_depth:
                    raise _GiveUp("nesting too deep")
            elif char == b"(":
                self.pos = match.start()
                self._string()
                pos = self.pos
            elif char == b"%":
                end = data.find(b"\n", match.end())
                pos = len(data) if end == -1 else end
            else:  # a backslash outside a string: not valid PDF, step over it
                pos = match.end()

    def _string(self) -> bytes:
        data, n = self.data, len(self.data)
        level, i = 0, self.pos
        while i < n:
            c = data[i]
            if c == 0x5C:  # backslash escapes the next byte
                i += 2
                continue
            if c == 0x28:
                level += 1
            elif c == 0x29:
                level -= 1
                if level == 0:
                    self.pos = i + 1
                    return b""
            i += 1
        raise _GiveUp("truncated string")


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------


class _Pdf:
    def __init__(self, handle: IO[bytes], size: int) -> None:
        self.handle = handle
        self.size = size
        self.reads = 0
        #: object number -> ("offset", offset) or ("stream", container number, index), once looked up.
        self.xref: dict[int, tuple[Any, ...]] = {}
        self.trailer: dict[str, Any] = {}
        #: cross-reference sections, newest first: a classic table's subsections
        #: ``(first object number, count, offset of the first entry, entry width)``, or a stream's rows.
        self.sections: list[list[tuple[int, int, int, int]] | _XrefRows] = []
        self._objstm_cache: dict[int, tuple[bytes, list[tuple[int, int]], int]] = {}

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        if self.reads > MAX_READS:
            raise _GiveUp("too many reads")
        if offset < 0 or offset >= self.size:
            raise _GiveUp("offset outside the file")
        self.handle.seek(offset)
        return self.handle.read(min(length, MAX_READ_BYTES, self.size - offset))

    # -- cross-reference sections ---------------------------------------------------------------

    def load(self) -> None:
        tail_start = max(0, self.size - TAIL_BYTES)
        tail = self.read(tail_start, TAIL_BYTES)
        found = list(_STARTXREF_RE.finditer(tail))
        if not found:
            raise _GiveUp("no startxref")
        offset = int(found[-1].group(1))
        seen: set[int] = set()
        first = True
        while offset is not None and len(seen) < MAX_SECTIONS:
            if offset in seen:
                break
            seen.add(offset)
            trailer = self._section(offset, tolerant=first)
            if first:
                self.trailer = dict(trailer)
                first = False
            else:
                for key in ("Root", "Encrypt"):
                    self.trailer.setdefault(key, trailer.get(key))
            xref_stm = trailer.get("XRefStm")
            if isinstance(xref_stm, int) and xref_stm not in seen:
                seen.add(xref_stm)
                self._section(xref_stm, tolerant=False)
            prev = trailer.get("Prev")
            offset = prev if isinstance(prev, int) and not isinstance(prev, bool) else None

    def _section(self, offset: int, *, tolerant: bool) -> dict[str, Any]:
        """Read the section at ``offset`` (a table or a stream) and return its trailer dictionary."""
        head = self.read(offset, 4096) if 0 <= offset < self.size else b""
        if head.lstrip(_WS).startswith(b"xref"):
            return self._table(offset + head.index(b"xref"))
        if _OBJ_RE.match(head.lstrip(_WS)):
            return self._stream_section(offset + len(head) - len(head.lstrip(_WS)))
        if not tolerant:
            raise _GiveUp("cross-reference section not found at its offset")
        # A wrong startxref (bytes added or removed before it): look nearby, never through the file.
        start = max(0, offset - XREF_SLACK)
        window = self.read(start, 2 * XREF_SLACK + 64)
        candidates = []
        for match in re.finditer(rb"(?:^|[\r\n])(xref)\s", window):
            candidates.append(start + match.start(1))
        for match in re.finditer(rb"(\d+)\s+(\d+)\s+obj\b", window):
            candidates.append(start + match.start())
        for candidate in sorted(candidates, key=lambda c: abs(c - offset)):
            try:
                return self._section(candidate, tolerant=False)
            except _GiveUp:
                continue
        raise _GiveUp("startxref points to no cross-reference section")

    def _table(self, offset: int) -> dict[str, Any]:
        """A classic ``xref`` table: subsection headers are read, entries are only located."""
        pos = offset + 4
        subsections: list[tuple[int, int, int, int]] = []
        for _ in range(10_000):
            chunk = self.read(pos, 256)
            lexer = _Lexer(chunk)
            lexer.skip_ws()
            if chunk[lexer.pos : lexer.pos + 7] == b"trailer":
                body = self.read(pos + lexer.pos + 7, 64 * 1024)
                trailer = _Lexer(body).value()
                if not isinstance(trailer, dict):
                    raise _GiveUp("trailer is not a dictionary")
                self.sections.append(subsections)
                return trailer
            header = re.compile(rb"(\d+)[ \t]+(\d+)[ \t]*\r?\n?").match(chunk, lexer.pos)
            if not header:
                raise _GiveUp("malformed xref subsection header")
            first, count = int(header.group(1)), int(header.group(2))
            entries = pos + header.end()
            # Entries are 20 bytes; a writer that ends them with one byte makes 19: measure it.
            sample = chunk[header.end() : header.end() + 20] if header.end() + 20 <= len(chunk) else b""
            width = 20
            if count and sample and sample[18:19] in (b"\r", b"\n") and sample[19:20] not in (b"\r", b"\n"):
                width = 19
            subsections.append((first, count, entries, width))
            pos = entries + count * width
            if pos > self.size:
                raise _GiveUp("xref table runs past the end of the file")
        raise _GiveUp("too many xref subsections")

    def _stream_section(self, offset: int) -> dict[str, Any]:
        """A cross-reference stream (PDF 1.5+): decompressed, bounded; entries are decoded only when looked up."""
        dictionary, data, columns = self._stream_object(offset, keep_predicted=True)
        if dictionary.get("Type") != "XRef":
            raise _GiveUp("object at startxref is not a cross-reference stream")
        widths = dictionary.get("W")
        size = dictionary.get("Size")
        if not (
            isinstance(widths, list) and len(widths) == 3 and all(isinstance(w, int) and 0 <= w <= 8 for w in widths)
        ):
            raise _GiveUp("bad /W")
        if not isinstance(size, int):
            raise _GiveUp("bad /Size")
        index = dictionary.get("Index", [0, size])
        if not (isinstance(index, list) and len(index) % 2 == 0 and all(isinstance(i, int) for i in index)):
            raise _GiveUp("bad /Index")
        if sum(widths) == 0:
            raise _GiveUp("empty /W")
        if columns is not None and columns != sum(widths):
            raise _GiveUp("predictor /Columns differ from /W")
        ranges, row = [], 0
        for i in range(0, len(index), 2):
            ranges.append((index[i], index[i + 1], row))
            row += index[i + 1]
        self.sections.append(_XrefRows(data, widths, ranges, predicted=columns is not None))
        return dictionary

    # -- objects --------------------------------------------------------------------------------

    def _locate(self, num: int) -> tuple[Any, ...] | None:
        if num in self.xref:
            return self.xref[num]
        for section in self.sections:
            location = section.lookup(num) if isinstance(section, _XrefRows) else self._table_entry(section, num)
            if location is not None and location[0] != "free":
                self.xref[num] = location
                return location
        return None

    def _table_entry(self, table: list[tuple[int, int, int, int]], num: int) -> tuple[Any, ...] | None:
        for first, count, entries, width in table:
            if first <= num < first + count:
                entry = self.read(entries + (num - first) * width, 20)
                match = re.match(rb"(\d{1,10})\s+(\d{1,5})\s+([nf])", entry)
                if not match:
                    raise _GiveUp("malformed xref entry")
                return ("offset", int(match.group(1))) if match.group(3) == b"n" else ("free",)
        return None

    def _stream_object(self, offset: int, *, keep_predicted: bool = False) -> tuple[dict[str, Any], bytes, int | None]:
        """
        ``(dictionary, decoded data, predictor columns)`` of the stream object at ``offset``.

        With ``keep_predicted`` PNG-predicted data is returned as it is, with its column count
        (cross-reference rows are then decoded one by one); otherwise it is undone here.
        """
        head = self.read(offset, 64 * 1024)
        match = _OBJ_RE.match(head)
        if not match:
            raise _GiveUp("no object at offset")
        lexer = _Lexer(head, match.end())
        dictionary = lexer.value()
        if not isinstance(dictionary, dict):
            raise _GiveUp("stream object without a dictionary")
        if lexer.keyword() != b"stream":
            raise _GiveUp("not a stream")
        start = lexer.pos
        if head[start : start + 2] == b"\r\n":
            start += 2
        elif head[start : start + 1] in (b"\n", b"\r"):
            start += 1
        length = dictionary.get("Length")
        if isinstance(length, _Ref):
            length = self._resolve_int(length)
        if not isinstance(length, int) or length < 0 or length > MAX_READ_BYTES:
            raise _GiveUp("stream /Length missing or too large")
        raw = head[start : start + length] if start + length <= len(head) else self.read(offset + start, length)
        data, columns = _decode(dictionary, raw)
        if columns is not None and not keep_predicted:
            if len(data) > 1024 * 1024:
                raise _GiveUp("predicted stream too large to undo cheaply")
            data, columns = _png_unpredict(data, columns), None
        return dictionary, data, columns

    def obj(self, ref: Any, depth: int = 0) -> Any:
        """The object a reference points to (or ``ref`` itself when it is a direct object)."""
        if not isinstance(ref, _Ref):
            return ref
        if depth > 4:
            raise _GiveUp("reference chain too long")
        location = self._locate(ref.num)
        if location is None or location[0] == "free":
            raise _GiveUp(f"object {ref.num} not in the cross-reference sections")
        if location[0] == "offset":
            head = self.read(location[1], 64 * 1024)
            match = _OBJ_RE.match(head.lstrip(_WS))
            if not match or int(match.group(1)) != ref.num:
                raise _GiveUp(f"object {ref.num} not at its offset")
            skipped = len(head) - len(head.lstrip(_WS))
            return _Lexer(head, skipped + match.end()).value()
        return self._from_object_stream(location[1], location[2], ref.num)

    def _from_object_stream(self, container: int, index: int, num: int) -> Any:
        if self.trailer.get("Encrypt") is not None:
            raise _GiveUp("object streams of an encrypted PDF")
        cached = self._objstm_cache.get(container)
        if cached is None:
            location = self._locate(container)
            if location is None or location[0] != "offset":
                raise _GiveUp("object stream not found")
            dictionary, data, _ = self._stream_object(location[1])
            count, first = dictionary.get("N"), dictionary.get("First")
            if not isinstance(count, int) or not isinstance(first, int) or count < 0 or first > len(data):
                raise _GiveUp("bad object stream header")
            numbers = [int(x) for x in re.findall(rb"\d+", data[:first])]
            pairs = list(zip(numbers[0::2], numbers[1::2], strict=False))[:count]
            cached = (data, pairs, first)
            self._objstm_cache.clear()
            self._objstm_cache[container] = cached
        data, pairs, first = cached
        position = next((i for i, (n, _) in enumerate(pairs) if n == num), index)
        if position >= len(pairs) or pairs[position][0] != num:
            raise _GiveUp(f"object {num} not in its object stream")
        return _Lexer(data, first + pairs[position][1]).value()

    def _resolve_int(self, ref: _Ref) -> int:
        value = self.obj(ref)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _GiveUp("expected an integer")
        return value

    def page_count(self) -> int:
        self.load()
        catalog = self.obj(self.trailer.get("Root"))
        if not isinstance(catalog, dict):
            raise _GiveUp("no catalog")
        pages = self.obj(catalog.get("Pages"))
        if not isinstance(pages, dict):
            raise _GiveUp("no page tree")
        count = pages.get("Count")
        if isinstance(count, _Ref):
            count = self._resolve_int(count)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_BELIEVABLE_PAGES:
            raise _GiveUp("no believable /Count")
        return count


def _decode(dictionary: dict[str, Any], raw: bytes) -> tuple[bytes, int | None]:
    """Inflate a stream; return its data and, when PNG-predicted, the predictor's column count (not undone)."""
    filters = dictionary.get("Filter")
    if filters is None:
        data = raw
    else:
        names = filters if isinstance(filters, list) else [filters]
        if names != ["FlateDecode"] and names != ["Fl"]:
            raise _GiveUp(f"unsupported stream filter {names!r}")
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(raw, MAX_INFLATE_BYTES)
        except zlib.error as exc:
            raise _GiveUp(f"corrupt stream: {exc}") from None
        if inflater.unconsumed_tail:
            raise _GiveUp("stream decompresses to more than the bound")
    params = dictionary.get("DecodeParms")
    if isinstance(params, list):
        params = params[0] if params else None
    if isinstance(params, dict):
        predictor = params.get("Predictor", 1)
        if isinstance(predictor, int) and predictor >= 10:
            columns = params.get("Columns", 1)
            if not isinstance(columns, int) or columns <= 0:
                raise _GiveUp("bad /Columns")
            return data, columns
        if predictor not in (1, None):
            raise _GiveUp("unsupported predictor")
    return data, None


class _XrefRows:
    """
    The rows of a cross-reference stream, decoded only for the objects looked up.

    PNG "Up" rows (what writers use) are undone for one row by summing its column over the rows
    before it, a C-speed slice per column; other predictors are undone whole, within a bound.
    """

    def __init__(self, data: bytes, widths: list[int], ranges: list[tuple[int, int, int]], *, predicted: bool) -> None:
        self.widths = widths
        self.row_len = sum(widths) + (1 if predicted else 0)
        self.ranges = ranges
        self.predicted = predicted
        self.data = data
        if predicted:
            types = data[0 :: self.row_len]
            if types.strip(b"\x00\x02"):  # Sub, Average or Paeth rows: undo everything, bounded
                if len(data) > 4 * 1024 * 1024:
                    raise _GiveUp("cross-reference stream predictors too costly to undo")
                self.data, self.row_len, self.predicted = _png_unpredict(data, sum(widths)), sum(widths), False
            else:
                self.types = types

    def _row(self, k: int) -> bytes:
        if (k + 1) * self.row_len > len(self.data):
            raise _GiveUp("cross-reference stream shorter than its /Index")
        if not self.predicted:
            return self.data[k * self.row_len : (k + 1) * self.row_len]
        start = self.types.rfind(b"\x00", 0, k + 1)
        start = max(start, 0)
        step, data = self.row_len, self.data
        return bytes(sum(data[start * step + 1 + c : k * step + 2 + c : step]) & 0xFF for c in range(step - 1))

    def lookup(self, num: int) -> tuple[Any, ...] | None:
        for first, count, row in self.ranges:
            if first <= num < first + count:
                raw = self._row(row + num - first)
                fields, p = [], 0
                for w in self.widths:
                    fields.append(int.from_bytes(raw[p : p + w], "big") if w else None)
                    p += w
                kind = 1 if self.widths[0] == 0 else fields[0]
                if kind == 1:
                    return ("offset", fields[1] or 0)
                if kind == 2:
                    return ("stream", fields[1] or 0, fields[2] or 0)
                return ("free",)
        return None


def _png_unpredict(data: bytes, columns: int) -> bytes:
    """Undo the PNG row predictors that cross-reference streams use (no colour channels: bpp 1)."""
    row_len = columns + 1
    out = bytearray()
    prev = bytearray(columns)
    for start in range(0, len(data) - row_len + 1, row_len):
        kind = data[start]
        row = bytearray(data[start + 1 : start + row_len])
        if kind == 1:
            for i in range(1, columns):
                row[i] = (row[i] + row[i - 1]) & 0xFF
        elif kind == 2:
            for i in range(columns):
                row[i] = (row[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(columns):
                left = row[i - 1] if i else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(columns):
                a = row[i - 1] if i else 0
                b, c = prev[i], prev[i - 1] if i else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise _GiveUp("unknown PNG predictor")
        out += row
        prev = row
    return bytes(out)


def count_pdf_pages_in(handle: IO[bytes], size: int | None = None) -> int | None:
    """
    Page count of the PDF in a seekable binary file, or None when it cannot be read cheaply.

    :param handle: a seekable binary file object, positioned anywhere.
    :param size: the file's size in bytes; found by seeking to the end when not given.
    """
    try:
        if size is None:
            size = handle.seek(0, os.SEEK_END)
        if not size:
            return None
        return _Pdf(handle, size).page_count()
    except (_GiveUp, OSError, ValueError, OverflowError, RecursionError, MemoryError):
        return None


def count_pdf_pages(path: str | os.PathLike[str]) -> int | None:
    """
    Page count of a local PDF, or None when it cannot be read cheaply (MinerU will judge it).

    Reads the trailer, the cross-reference sections and the page tree's root only, with bounded
    reads: well under a second and a few MB for any file, damaged ones included.

    :param path: the PDF.
    """
    try:
        with open(path, "rb") as handle:
            return count_pdf_pages_in(handle, os.fstat(handle.fileno()).st_size)
    except OSError:
        return None
