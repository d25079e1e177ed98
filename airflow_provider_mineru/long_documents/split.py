"""
Splitting a local PDF into one file per slice, for uploads over the page limit.

Why split locally rather than upload once per slice with ``page_ranges`` (measured in
``bench/bench_long_documents.py``, figures in ``docs/long-documents.md``): a ``/file-urls/batch``
entry has its own upload URL, so ``page_ranges`` sends the whole file once per slice (five
uploads of a 150 MB file for five slices), and MinerU's limit is on the file's pages: the
emulator, like the cloud's error text, refuses a 1,000-page file at 200 pages per file whatever
its ``page_ranges``. Local parts send each page once and bill exactly the slice's pages.

Safety and memory:

* the page count comes first from :func:`~airflow_provider_mineru.inputs.pdf_pages.count_pdf_pages`
  (bounded reads). A PDF it cannot count, an encrypted one, or one where pypdf sees another page
  count is not split: :class:`~.plan.MinerUCannotSplitError` names the file and the limit. pypdf never
  gets a file whose cross-reference table it would have to rebuild by reading the whole file;
* a ``startxref`` that is a little off (bytes added or removed before the cross-reference table,
  the usual state of scanned and concatenated PDFs) is corrected the way the page count finds the
  table, within :data:`~airflow_provider_mineru.inputs.pdf_pages.XREF_SLACK` bytes, in a view of the file
  whose last bytes are rewritten (nothing before the ``startxref`` line moves); anything further
  off is refused;
* each part is written by a fresh :class:`pypdf.PdfReader`, so objects read for one part are
  freed before the next: the memory held is about one part's objects (a 150 MB, 1,000-page scan
  at 200 pages per part: about 30 MB), never the whole file;
* each part is streamed to a temporary file beside its final name, counted again with bounded
  reads, then renamed: a part on disk is complete.
"""

from __future__ import annotations

import gc
import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from airflow_provider_mineru.exceptions import MinerUCannotSplitError
from airflow_provider_mineru.inputs.pdf_pages import XREF_SLACK, count_pdf_pages
from airflow_provider_mineru.long_documents.plan import PageSlice, SlicePlan, cannot_split_message

__all__ = ["SplitPart", "part_file_name", "split_pdf"]


@dataclass(frozen=True)
class SplitPart:
    """
    One slice written as its own PDF.

    :param slice: the slice.
    :param path: the part's file.
    :param size: its size in bytes (what its upload sends).
    """

    slice: PageSlice
    path: Path
    size: int


def part_file_name(name: str, piece: PageSlice) -> str:
    """The part's file name: ``report.pdf`` → ``report.pages-201-400.pdf`` (MinerU sees this name)."""
    stem, _, _ext = Path(name).name.rpartition(".")
    return f"{stem or name}.pages-{piece.first_page}-{piece.last_page}.pdf"


def split_pdf(source: str | os.PathLike[str], plan: SlicePlan, workdir: str | os.PathLike[str]) -> list[SplitPart]:
    """
    Write each slice of ``plan`` as its own PDF in ``workdir``, in page order.

    An unsplit plan (one slice) writes nothing and returns the source itself as the one part.

    :param source: the local PDF.
    :param plan: its plan (:func:`~.plan.plan_slices`, with the page count read from ``source``).
    :param workdir: an existing folder for the parts (the caller removes it after the upload).
    :raises MinerUCannotSplitError: the PDF cannot be split safely; the message names it and the limit.
    """
    source = Path(source)
    name = source.name
    if not plan.slices:
        raise MinerUCannotSplitError(cannot_split_message(name, plan.max_pages, "its page count is unknown"))
    if not plan.is_split:
        return [SplitPart(plan.slices[0], source, source.stat().st_size)]
    counted = count_pdf_pages(source)
    if counted is None:
        raise MinerUCannotSplitError(
            cannot_split_message(name, plan.max_pages, "its page tree cannot be read with bounded reads")
        )
    if counted != plan.total_pages:
        raise MinerUCannotSplitError(
            cannot_split_message(
                name, plan.max_pages, f"it has {counted} pages now and {plan.total_pages} when planned"
            )
        )
    parts: list[SplitPart] = []
    written: list[Path] = []
    try:
        for piece in plan.slices:
            part = _write_part(source, piece, counted, Path(workdir) / part_file_name(name, piece), plan.max_pages)
            written.append(part.path)
            parts.append(part)
            # pypdf's objects hold reference cycles: without a collection each part's ~30 MB of
            # streams stayed until the end (measured: +160 MB RSS for 150 MB in 5 parts, +31 MB with it).
            gc.collect()
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return parts


def _write_part(source: Path, piece: PageSlice, counted: int, target: Path, max_pages: int) -> SplitPart:
    name = source.name
    temporary = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:12]}")
    try:
        with open(source, "rb") as handle:
            reader = _open_reader(handle)
            if reader.is_encrypted:
                raise MinerUCannotSplitError(cannot_split_message(name, max_pages, "it is encrypted"))
            if len(reader.pages) != counted:
                raise MinerUCannotSplitError(
                    cannot_split_message(
                        name, max_pages, f"its page tree says {counted} pages and its pages number {len(reader.pages)}"
                    )
                )
            writer = PdfWriter()
            for number in range(piece.first_page - 1, piece.last_page):
                writer.add_page(reader.pages[number])
            with open(temporary, "wb") as out:
                writer.write(out)
            del writer, reader
        if count_pdf_pages(temporary) != piece.pages:
            raise MinerUCannotSplitError(
                cannot_split_message(name, max_pages, f"its part of pages {piece.page_ranges} did not come out whole")
            )
        os.replace(temporary, target)
    except MinerUCannotSplitError:
        temporary.unlink(missing_ok=True)
        raise
    except Exception as exc:  # pypdf's errors on a structure it cannot read: not split, with the reason
        temporary.unlink(missing_ok=True)
        raise MinerUCannotSplitError(
            cannot_split_message(name, max_pages, f"pypdf cannot read it ({type(exc).__name__}: {exc})")
        ) from exc
    return SplitPart(piece, target, target.stat().st_size)


_STARTXREF_RE = re.compile(rb"startxref\s*(\d+)")
#: Bytes at the end of a file searched for its ``startxref`` line.
_TAIL_BYTES = 1024


def _open_reader(handle: IO[bytes]) -> PdfReader:
    """
    A strict reader of the PDF in ``handle``; a slightly wrong ``startxref`` is corrected.

    strict: a damaged structure raises instead of pypdf rebuilding the cross-reference table by
    reading the whole file into memory (what pdf_pages exists to avoid).
    """
    try:
        return PdfReader(handle, strict=True)
    except PdfReadError as exc:
        size = handle.seek(0, os.SEEK_END)
        for head, tail in _corrected_tails(handle, size):
            try:
                return PdfReader(io.BufferedReader(_TailPatched(handle, head, tail), 1024 * 1024), strict=True)
            except PdfReadError:
                continue
        raise exc


def _corrected_tails(handle: IO[bytes], size: int, tries: int = 4) -> list[tuple[int, bytes]]:
    """
    ``(where the tail starts, the tail with startxref pointing elsewhere)``, most likely first.

    The candidates are cross-reference tables (``xref``) within :data:`XREF_SLACK` bytes of the
    offset ``startxref`` claims, nearest first, then objects (cross-reference streams); at most ``tries``.
    """
    head = max(0, size - _TAIL_BYTES)
    handle.seek(head)
    tail = handle.read(size - head)
    found = list(_STARTXREF_RE.finditer(tail))
    if not found:
        return []
    match = found[-1]
    claimed = int(match.group(1))
    start = max(0, claimed - XREF_SLACK)
    handle.seek(start)
    window = handle.read(2 * XREF_SLACK + 64)
    tables = [start + m.start(1) for m in re.finditer(rb"(?:^|[\r\n])(xref)\s", window)]
    streams = [start + m.start(1) for m in re.finditer(rb"(?:^|[\r\n])(\d+\s+\d+\s+obj)\b", window)]
    ordered = sorted(tables, key=lambda c: abs(c - claimed)) + sorted(streams, key=lambda c: abs(c - claimed))
    candidates = [c for c in ordered if c != claimed and c < head][:tries]
    return [(head, tail[: match.start(1)] + b"%d" % c + tail[match.end(1) :]) for c in candidates]


class _TailPatched(io.RawIOBase):
    """A read-only view of a file whose bytes from ``head`` on are ``tail`` instead."""

    def __init__(self, handle: IO[bytes], head: int, tail: bytes) -> None:
        super().__init__()
        self._handle, self._head, self._tail, self._pos = handle, head, tail, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._head + len(self._tail)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted, got = len(view), 0
        if self._pos < self._head:
            self._handle.seek(self._pos)
            chunk = self._handle.read(min(wanted, self._head - self._pos))
            view[: len(chunk)] = chunk
            got = len(chunk)
        offset = self._pos + got - self._head
        if got < wanted and 0 <= offset < len(self._tail):
            chunk = self._tail[offset : offset + wanted - got]
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
        self._pos += got
        return got
